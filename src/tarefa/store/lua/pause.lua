--[[ pause: stop workers taking jobs from a queue (running jobs finish; their
outcomes, retries and recoveries go on as usual).

KEYS[1]  the queue's paused flag

Returns 1.
]]
redis.call('SET', KEYS[1], 1)
return 1
