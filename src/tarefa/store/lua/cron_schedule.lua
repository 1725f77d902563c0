--[[ cron_schedule: keep a cron task's next tick scheduled, judged by this
server's clock. Every worker serving the task's queue calls it; whoever comes
first does the work, the others find it done.

KEYS[1]  the task's cron mark (a string: the latest tick scheduled)
KEYS[2]  job key prefix (tarefa:{q}:job:): a job's key is prefix .. id
KEYS[3]  ready list
KEYS[4]  scheduled zset
KEYS[5]  marker zset
KEYS[6]  prioritized zset
KEYS[7]  priority arrival counter
ARGV[1]  job id prefix (cron:<task>:): a tick's job id is this .. tick
ARGV[2]  the task's latest tick before now (seconds since the epoch)
ARGV[3]  its next tick after now
ARGV[4..] the job's fields as name/value pairs (task, payload, options)

A tick's job is due at tick * 1000 ms on this server's clock (a tick already
due is queued at once). No tick at or before the mark is ever scheduled again:
a tick cancelled, run or dropped stays so, whatever a worker thinks the time is.

1. Catch-up: when the mark is older than the latest tick (ticks were missed:
   no worker ran) and its job is not waiting to run, the latest tick runs now.
2. The next tick is scheduled, unless the mark has reached it.

Returns {tick caught up or 0, tick scheduled or 0}.
]]
--- @include "includes/now.lua"
--- @include "includes/add_job.lua"

local mark_key, prefix = KEYS[1], KEYS[2]
local keys = {
  ready = KEYS[3], scheduled = KEYS[4], marker = KEYS[5],
  prioritized = KEYS[6], priority_seq = KEYS[7],
}
local id_prefix, previous, next_tick = ARGV[1], ARGV[2], ARGV[3]
local now = now_ms()

local function waiting(tick)
  local state = redis.call('HGET', prefix .. id_prefix .. tick, 'state')
  return state == 'queued' or state == 'scheduled'
end

local function schedule(tick)
  local id = id_prefix .. tick
  local delay = math.max(0, tonumber(tick) * 1000 - now)
  add_job(prefix .. id, id, delay, 0, now, ARGV, 4, #ARGV, keys)
  redis.call('SET', mark_key, tick)
end

local mark = redis.call('GET', mark_key)
local caught_up, scheduled = 0, 0
if mark and tonumber(mark) < tonumber(previous) and not waiting(mark) then
  schedule(previous)
  mark, caught_up = previous, previous
end
if not mark or tonumber(next_tick) > tonumber(mark) then
  schedule(next_tick)
  scheduled = next_tick
end
return {caught_up, scheduled}
