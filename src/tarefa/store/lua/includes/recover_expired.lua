--- @include "includes/notify.lua"
--- @include "includes/wake.lua"
-- Move jobs whose lease expired (their worker stopped renewing it: killed,
-- frozen, cut off) back to the front of the ready list, counting a stall.
-- A job that stalls more than max_stalls times fails with a clear error.
-- Returns how many jobs were recovered.
local function recover_expired(prefix, now, limit, max_stalls, keys)
  local ids = redis.call('ZRANGEBYSCORE', keys.active, '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(ids) do
    redis.call('ZREM', keys.active, id)
    local job_key = prefix .. id
    if redis.call('EXISTS', job_key) == 1 then
      local stalls = redis.call('HINCRBY', job_key, 'stalls', 1)
      if stalls > max_stalls then
        local err = cjson.encode({
          type = 'StalledJobError',
          message = 'the worker running this job stopped (killed or unreachable) '
            .. stalls .. ' times; giving up',
        })
        redis.call('HSET', job_key, 'state', 'failed', 'finished_at', now, 'error', err)
        redis.call('ZADD', keys.failed, now, id)
        notify_waiters(job_key, keys.done_prefix .. id, redis.call('HGET', job_key, 'waiters'))
      else
        redis.call('HSET', job_key, 'state', 'queued')
        redis.call('RPUSH', keys.ready, id)
      end
    end
  end
  if #ids > 0 then
    wake(keys.marker)
  end
  return #ids
end
