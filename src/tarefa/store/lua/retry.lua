--[[ retry: send a failed job (from the dead-letter set) back to run again,
with a fresh count of attempts and stalls.

KEYS     the queue's keys it reads (includes/queue_keys.lua)
ARGV[1]  job id

Returns 1 when the job was re-queued, else its state ('' when it does not exist).
]]
--- @include "includes/now.lua"
--- @include "includes/make_ready.lua"

local id = ARGV[1]
local job_key = keys.job_prefix .. id
local f = redis.call('HMGET', job_key, 'state', 'priority', 'key')
if f[1] ~= 'failed' then
  return f[1] or ''
end
redis.call('ZREM', keys.failed, id)
redis.call('HSET', job_key, 'state', 'queued', 'attempts', 0, 'stalls', 0, 'ready_at', now_ms())
redis.call('HDEL', job_key, 'finished_at')
make_ready(id, f[2], f[3], false)
return 1
