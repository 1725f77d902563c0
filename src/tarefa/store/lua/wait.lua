--[[ wait: register a caller about to block in job.result(), so that the job's
end pushes a token to its done list (see includes/notify.lua).

KEYS     the queue's keys it reads (includes/queue_keys.lua)
ARGV[1]  job id

Returns the job's state: when it is already final ('completed', 'failed',
'cancelled') nothing is registered and the caller reads the outcome at once;
'' when the job does not exist.
]]
--- @include "includes/queue_keys.lua"

local job_key = keys.job_prefix .. ARGV[1]
local state = redis.call('HGET', job_key, 'state')
if not state then
  return ''
end
if state ~= 'completed' and state ~= 'failed' and state ~= 'cancelled' then
  redis.call('HINCRBY', job_key, 'waiters', 1)
end
return state
