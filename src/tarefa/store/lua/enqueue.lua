--[[ enqueue: add one job to a queue, to run now or after a delay.

KEYS     the queue's keys it reads (includes/queue_keys.lua)
ARGV[1]  job id
ARGV[2]  delay in ms (0: run now)
ARGV[3]  priority (0: none; else smaller runs sooner)
ARGV[4]  key ('' none): the job waits in its key's lane (includes/lanes.lua)
ARGV[5]  de-duplication window: '' none, 'throttle' or 'debounce'
ARGV[6]  the window in ms
ARGV[7]  what the window is per (task name and key)
ARGV[8]  how many jobs it waits for (0: none; see resolve.lua)
ARGV[9]  '1': the caller waits for the fsync of this call's writes (a durable
         enqueue, WAITAOF), so a job found rather than made is written to as
         well (includes/add_job.lua); else '0'
ARGV[10..] the job's fields as name/value pairs (task, payload, options, parents)

Returns 1 when added. When a job with this id exists (queued, scheduled,
active, or finished and still kept) nothing is added and its state is
returned. When a window kept another job instead, returns {its id, its state}:
  throttle: the first job of the window stands, repeats within it are dropped;
  debounce: the job waits out the window; a repeat within it replaces the
            waiting job's arguments and starts the window again, so only the
            last of a burst runs (under the first one's id).
]]
--- @include "includes/now.lua"
--- @include "includes/add_job.lua"

local id, window, window_ms = ARGV[1], ARGV[5], tonumber(ARGV[6])
local how = { delay = tonumber(ARGV[2]), priority = tonumber(ARGV[3]), key = ARGV[4],
  waits = tonumber(ARGV[8]), durable = ARGV[9] == '1' }
local now = now_ms()
if window == '' then
  return add_job(id, how, now, ARGV, 10, #ARGV)
end

local holder = keys.dedupe_prefix .. ARGV[7]
local kept = redis.call('GET', holder)
if kept and window == 'throttle' then
  local state = redis.call('HGET', keys.job_prefix .. kept, 'state')
  if state and how.durable then
    cover_for_durable(keys.job_prefix .. kept, state)
  end
  return {kept, state or ''}
end
if window == 'debounce' then
  how.delay = math.max(how.delay, window_ms)
  if kept and redis.call('HGET', keys.job_prefix .. kept, 'state') == 'scheduled' then
    -- Not started yet: it takes these arguments and waits the window again.
    local kept_key = keys.job_prefix .. kept
    redis.call('HDEL', kept_key, 'options')
    redis.call('HSET', kept_key, unpack(ARGV, 10, #ARGV))
    redis.call('ZADD', keys.scheduled, now + how.delay, kept)
    redis.call('SET', holder, kept, 'PX', how.delay)
    return {kept, 'scheduled'}
  end
end
local added = add_job(id, how, now, ARGV, 10, #ARGV)
if added == 1 then
  redis.call('SET', holder, id, 'PX', math.max(how.delay, window_ms))
end
return added
