--- @include "includes/notify.lua"
--- @include "includes/make_ready.lua"
--- @include "includes/lane_done.lua"
--- @include "includes/lost.lua"
--- @include "includes/dead_letters.lua"
-- Move jobs whose lease expired (their worker stopped renewing it: killed,
-- frozen, cut off) back to the front of where they wait, counting a stall.
-- A job that stalls more than max_stalls times fails with a clear error (and
-- the dead-letter set is trimmed: includes/dead_letters.lua); if
-- jobs wait for it, {id, 'failed', their "queue|id"} is added to ended, for
-- the caller to resolve. Ids whose job is gone are added to lost
-- (includes/lost.lua). Each job recovered is added to recovered as 5 items:
-- id, task, the worker that held the lease, its stalls, and 'queued' (back
-- to ready) or 'failed' (too many stalls). Returns how many leases expired.
local function recover_expired(now, limit, max_stalls, ended, lost, recovered)
  local ids = redis.call('ZRANGEBYSCORE', keys.active, '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(ids) do
    -- A write that frees memory before any that needs some: so a full Redis
    -- (maxmemory, noeviction) runs recovery too (see fetch.lua).
    redis.call('ZREM', keys.active, id)
    local job_key = keys.job_prefix .. id
    local f = redis.call('HMGET', job_key, 'state', 'priority', 'key', 'waiters', 'task',
      'dependents', 'worker')
    if f[1] then
      local stalls = redis.call('HINCRBY', job_key, 'stalls', 1)
      if stalls > max_stalls then
        local err = cjson.encode({
          type = 'StalledJobError',
          message = 'the worker running this job stopped (killed or unreachable) '
            .. stalls .. ' times; giving up',
        })
        redis.call('HSET', job_key, 'state', 'failed', 'finished_at', now, 'error', err)
        redis.call('ZADD', keys.failed, now, id)
        trim_dead_letters(now)
        redis.call('HINCRBY', keys.stats, 'failed|' .. (f[5] or ''), 1) -- no worker saw it end
        notify_waiters(id, f[4])
        local dependents = f[6] and take_dependents(id)
        if dependents then
          ended[#ended + 1] = {id, 'failed', dependents}
        end
      else
        redis.call('HSET', job_key, 'state', 'queued')
        make_ready(id, f[2], f[3], true)
      end
      if f[3] then
        lane_done(f[3])
      end
      local n = #recovered
      recovered[n + 1] = id
      recovered[n + 2] = f[5] or ''
      recovered[n + 3] = f[7] or ''
      recovered[n + 4] = stalls
      recovered[n + 5] = stalls > max_stalls and 'failed' or 'queued'
    else
      job_lost(id, lost)
    end
  end
  if #ids > 0 then
    wake()
  end
  return #ids
end
