--[[ delete: remove jobs, whatever their state, and every trace of them.

KEYS     the queue's keys (includes/queue_keys.lua)
ARGV[1..] job ids

A running attempt loses its job: its heartbeat learns it and stops the job,
and whatever it reports is discarded (the lease fences it). Callers blocked
in job.result() wake and find no job. Jobs waiting for a deleted job that had
not ended are returned for the caller to cancel, as if it had been cancelled
(a missing parent would otherwise count as completed).

Returns {how many were deleted, {id, "queue|id" of a job waiting for it, ...}}.
]]
--- @include "includes/notify.lua"
--- @include "includes/unlist.lua"

local deleted, orphans = 0, {}
for _, id in ipairs(ARGV) do
  local job_key = keys.job_prefix .. id
  local f = redis.call('HMGET', job_key, 'state', 'key', 'waiters')
  if f[1] then
    -- First, writes that free memory: a full Redis runs the rest too (see fetch.lua).
    unlist(id, f[2])
    redis.call('ZREM', keys.completed, id)
    redis.call('ZREM', keys.failed, id)
    notify_waiters(id, f[3])
    redis.call('DEL', job_key)
    for _, ref in ipairs(take_waiting_for(id)) do
      orphans[#orphans + 1] = id
      orphans[#orphans + 1] = ref
    end
    deleted = deleted + 1
  end
end
return {deleted, orphans}
