--[[ wait: register a caller about to block in job.result(), so that the job's
end pushes a token to its done list (see includes/notify.lua).

KEYS[1]  job hash

Returns the job's state: when it is already final ('completed', 'failed',
'cancelled') nothing is registered and the caller reads the outcome at once;
'' when the job does not exist.
]]
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  return ''
end
if state ~= 'completed' and state ~= 'failed' and state ~= 'cancelled' then
  redis.call('HINCRBY', KEYS[1], 'waiters', 1)
end
return state
