--[[ add_dependent: a job that waits for this one (a parent) asks to be told
when it ends. Called on the parent's queue right after the dependants are
enqueued (they may live in other queues).

KEYS     the parent's queue's keys it reads (includes/queue_keys.lua)
ARGV[1]  parent job id
ARGV[2..] the dependants, each as "queue|id"

Returns 1 when registered: the parent's end will be reported to them. When
the parent has already ended, nothing is registered and its state is returned
('' when it does not exist) for the caller to report at once.
]]
--- @include "includes/queue_keys.lua"

local job_key = keys.job_prefix .. ARGV[1]
local state = redis.call('HGET', job_key, 'state')
if not state or state == 'completed' or state == 'failed' or state == 'cancelled' then
  return state or ''
end
redis.call('RPUSH', keys.dependents_prefix .. ARGV[1], unpack(ARGV, 2, #ARGV))
-- Its end looks for the list only when this is set (includes/finish_job.lua).
redis.call('HSET', job_key, 'dependents', 1)
return 1
