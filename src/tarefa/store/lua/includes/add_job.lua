--- @include "includes/make_ready.lua"
-- Add one job, unless a job with this id exists already (de-duplication by id).
-- Its fields (task, payload, options: name/value pairs) are fields[first..last];
-- priority 0 means none, key '' none. Returns 1 when added, else the state of
-- the job that already holds the id.
local function add_job(id, delay_ms, priority, key, now, fields, first, last)
  local job_key = keys.job_prefix .. id
  local existing = redis.call('HGET', job_key, 'state')
  if existing then
    return existing
  end
  local state = delay_ms > 0 and 'scheduled' or 'queued'
  redis.call('HSET', job_key, 'state', state, 'enqueued_at', now, unpack(fields, first, last))
  if priority > 0 then
    redis.call('HSET', job_key, 'priority', priority)
  end
  if key ~= '' then
    redis.call('HSET', job_key, 'key', key)
  end
  if delay_ms > 0 then
    local earliest = redis.call('ZRANGE', keys.scheduled, 0, 0, 'WITHSCORES')
    redis.call('ZADD', keys.scheduled, now + delay_ms, id)
    -- Only a new earliest due time changes how long idle workers should sleep.
    if earliest[2] == nil or now + delay_ms < tonumber(earliest[2]) then
      wake()
    end
  else
    make_ready(id, priority, key, false)
  end
  return 1
end
