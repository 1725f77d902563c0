--- @include "includes/wake.lua"
-- Add one job, unless a job with this id exists already (de-duplication by id).
-- Its fields (task, payload, options: name/value pairs) are fields[first..last].
-- Returns 1 when added, else the state of the job that already holds the id.
local function add_job(job_key, id, delay_ms, now, fields, first, last, ready, scheduled, marker)
  local existing = redis.call('HGET', job_key, 'state')
  if existing then
    return existing
  end
  if delay_ms > 0 then
    redis.call('HSET', job_key, 'state', 'scheduled', 'enqueued_at', now, unpack(fields, first, last))
    local earliest = redis.call('ZRANGE', scheduled, 0, 0, 'WITHSCORES')
    redis.call('ZADD', scheduled, now + delay_ms, id)
    -- Only a new earliest due time changes how long idle workers should sleep.
    if earliest[2] == nil or now + delay_ms < tonumber(earliest[2]) then
      wake(marker)
    end
  else
    redis.call('HSET', job_key, 'state', 'queued', 'enqueued_at', now, unpack(fields, first, last))
    -- Wake idle workers when the list was empty. When it was not, whoever made
    -- it non-empty woke them, and a worker leaving work behind wakes the next.
    if redis.call('LPUSH', ready, id) == 1 then
      wake(marker)
    end
  end
  return 1
end
