--[[ cron_schedule: keep a cron task's next tick scheduled, judged by this
server's clock. Every worker serving the task's queue calls it; whoever comes
first does the work, the others find it done.

KEYS     the queue's keys it reads (includes/queue_keys.lua)
ARGV[1]  the task's name: its mark is cron_prefix .. name (the latest tick
         scheduled), its run cron_run_prefix .. name (the tick whose job is
         its latest run)
ARGV[2]  job id prefix (cron:<task>:): a tick's job id is this .. tick
ARGV[3]  the task's latest tick before now (seconds since the epoch)
ARGV[4]  its next tick after now
ARGV[5]  lead (ms): how long before it is due a tick is settled
ARGV[6..] the job's fields as name/value pairs (task, payload, options)

A tick's job is due at tick * 1000 ms on this server's clock (a tick already
due is queued at once). No tick at or before the mark is ever scheduled again:
a tick cancelled, run or merged stays so, whatever a worker thinks the time is.

1. Settle: once the latest tick scheduled is due within the lead, it becomes
   the task's run, unless the run before it is still waiting to start (queued
   or scheduled: the queue is paused or busy, or it waits for a retry). Then
   the tick's job is removed, merged into that run, which runs once, late: at
   most one run per task waits, however long the queue is held up.
2. Catch-up: when the mark is older than the latest tick (ticks were missed:
   no worker ran) and no run is waiting, the latest tick runs now.
3. The next tick is scheduled, unless the mark has reached it.

Returns {tick merged or 0, tick caught up or 0, tick scheduled or 0}.
]]
--- @include "includes/now.lua"
--- @include "includes/notify.lua"
--- @include "includes/add_job.lua"

local mark_key, run_key = keys.cron_prefix .. ARGV[1], keys.cron_run_prefix .. ARGV[1]
local id_prefix, previous, next_tick, lead = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local now = now_ms()

-- Whether a tick's job has yet to start (an attempt, or its retry).
local function waiting(tick)
  if not tick then
    return false
  end
  local state = redis.call('HGET', keys.job_prefix .. id_prefix .. tick, 'state')
  return state == 'queued' or state == 'scheduled'
end

local function schedule(tick)
  local id = id_prefix .. tick
  local how = { delay = math.max(0, tonumber(tick) * 1000 - now), priority = 0, key = '', waits = 0 }
  add_job(id, how, now, ARGV, 6, #ARGV)
  redis.call('SET', mark_key, tick)
end

local function remove(tick)
  local id = id_prefix .. tick
  local job_key = keys.job_prefix .. id
  redis.call('ZREM', keys.scheduled, id)
  redis.call('LREM', keys.ready, 1, id)
  notify_waiters(id, redis.call('HGET', job_key, 'waiters'))
  redis.call('DEL', job_key)
end

local mark, run = redis.call('GET', mark_key), redis.call('GET', run_key)
local merged, caught_up, scheduled = 0, 0, 0

if mark and mark ~= run and now >= tonumber(mark) * 1000 - lead and waiting(mark) then
  if waiting(run) then
    remove(mark)
    merged = mark
  else
    redis.call('SET', run_key, mark)
    run = mark
  end
end

if mark and tonumber(mark) < tonumber(previous) and not waiting(run) then
  schedule(previous)
  redis.call('SET', run_key, previous)
  mark, caught_up = previous, previous
end

if not mark or tonumber(next_tick) > tonumber(mark) then
  schedule(next_tick)
  scheduled = next_tick
end
return {merged, caught_up, scheduled}
