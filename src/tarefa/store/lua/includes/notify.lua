--- @include "includes/queue_keys.lua"
-- Wake the callers blocked in job.result() on this job: one token each, on
-- its done list. waiters: the job's 'waiters' field as read (may be false).
local function notify_waiters(id, waiters)
  local n = tonumber(waiters or 0) or 0
  if n > 0 then
    local signal = keys.done_prefix .. id
    for _ = 1, n do
      redis.call('LPUSH', signal, 1)
    end
    redis.call('PEXPIRE', signal, 60000)
    redis.call('HDEL', keys.job_prefix .. id, 'waiters')
  end
end

-- The "queue|id" of the jobs waiting for this one to end (chains, groups),
-- taken off its list: the caller resolves them (resolve.lua). nil: none.
local function take_dependents(id)
  local list = keys.dependents_prefix .. id
  local dependents = redis.call('LRANGE', list, 0, -1)
  if #dependents > 0 then
    redis.call('DEL', list)
    return dependents
  end
  return nil
end
