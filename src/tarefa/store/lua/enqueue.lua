--[[ enqueue: add one job to a queue, to run now or after a delay.

KEYS     the queue's keys (includes/queue_keys.lua)
ARGV[1]  job id
ARGV[2]  delay in ms (0: run now)
ARGV[3]  priority (0: none; else smaller runs sooner)
ARGV[4]  key ('' none): the job waits in its key's lane (includes/lanes.lua)
ARGV[5]  de-duplication window: '' none, 'throttle' or 'debounce'
ARGV[6]  the window in ms
ARGV[7]  what the window is per (task name and key)
ARGV[8..] the job's fields as name/value pairs (task, payload, options)

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

local id, delay, priority, key = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local window, window_ms = ARGV[5], tonumber(ARGV[6])
local now = now_ms()
if window == '' then
  return add_job(id, delay, priority, key, now, ARGV, 8, #ARGV)
end

local holder = keys.dedupe_prefix .. ARGV[7]
local kept = redis.call('GET', holder)
if kept and window == 'throttle' then
  return {kept, redis.call('HGET', keys.job_prefix .. kept, 'state') or ''}
end
if window == 'debounce' then
  delay = math.max(delay, window_ms)
  if kept and redis.call('HGET', keys.job_prefix .. kept, 'state') == 'scheduled' then
    -- Not started yet: it takes these arguments and waits the window again.
    local kept_key = keys.job_prefix .. kept
    redis.call('HDEL', kept_key, 'options')
    redis.call('HSET', kept_key, unpack(ARGV, 8, #ARGV))
    redis.call('ZADD', keys.scheduled, now + delay, kept)
    redis.call('SET', holder, kept, 'PX', delay)
    return {kept, 'scheduled'}
  end
end
local added = add_job(id, delay, priority, key, now, ARGV, 8, #ARGV)
if added == 1 then
  redis.call('SET', holder, id, 'PX', math.max(delay, window_ms))
end
return added
