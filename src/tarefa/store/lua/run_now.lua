--[[ run_now: a scheduled job (a delay or a retry's back-off not over yet)
is made ready at once, as if its time had come.

KEYS     the queue's keys it reads (includes/queue_keys.lua)
ARGV[1]  job id

Returns 1 when the job was made ready, else its state ('' when it does not exist).
]]
--- @include "includes/now.lua"
--- @include "includes/make_ready.lua"

local id = ARGV[1]
local job_key = keys.job_prefix .. id
local f = redis.call('HMGET', job_key, 'state', 'priority', 'key')
if f[1] ~= 'scheduled' then
  return f[1] or ''
end
redis.call('ZREM', keys.scheduled, id)
redis.call('HSET', job_key, 'state', 'queued', 'ready_at', now_ms())
make_ready(id, f[2], f[3], false)
return 1
