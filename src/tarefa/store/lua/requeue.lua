--[[ requeue: a worker hands back jobs it leased but will not finish (shutdown
grace period over): they go to the front of where they wait, and the attempt
does not count.

KEYS     the queue's keys it reads (includes/queue_keys.lua)
ARGV[1..] pairs: job id, lease token

Returns how many jobs were handed back (a job whose lease this worker no longer
holds is left alone).
]]
--- @include "includes/make_ready.lua"
--- @include "includes/lane_done.lua"

local count = 0
for i = 1, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local job_key = keys.job_prefix .. id
  local f = redis.call('HMGET', job_key, 'state', 'lease', 'priority', 'key')
  if f[1] == 'active' and f[2] == token then
    -- First, a write that frees memory: a full Redis runs the rest too (see fetch.lua).
    redis.call('ZREM', keys.active, id)
    redis.call('HSET', job_key, 'state', 'queued')
    redis.call('HINCRBY', job_key, 'attempts', -1)
    make_ready(id, f[3], f[4], true)
    if f[4] then
      lane_done(f[4])
    end
    count = count + 1
  end
end
if count > 0 then
  wake()
end
return count
