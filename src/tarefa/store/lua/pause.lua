--[[ pause: stop workers taking jobs from a queue (running jobs finish; their
outcomes, retries and recoveries go on as usual).

KEYS     the queue's keys it reads (includes/queue_keys.lua)

Returns 1.
]]
--- @include "includes/queue_keys.lua"

redis.call('SET', keys.paused, 1)
return 1
