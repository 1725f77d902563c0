--[[ requeue: a worker hands back jobs it leased but will not finish (shutdown
grace period over): they go to the front of the ready list, and the attempt
does not count.

KEYS[1]  job key prefix (tarefa:{q}:job:): a job's key is prefix .. id
KEYS[2]  ready list
KEYS[3]  active zset
KEYS[4]  marker zset
ARGV[1..] pairs: job id, lease token

Returns how many jobs were handed back (a job whose lease this worker no longer
holds is left alone).
]]
--- @include "includes/wake.lua"

local count = 0
for i = 1, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local job_key = KEYS[1] .. id
  local current = redis.call('HMGET', job_key, 'state', 'lease')
  if current[1] == 'active' and current[2] == token then
    redis.call('ZREM', KEYS[3], id)
    redis.call('HSET', job_key, 'state', 'queued')
    redis.call('HINCRBY', job_key, 'attempts', -1)
    redis.call('RPUSH', KEYS[2], id)
    count = count + 1
  end
end
if count > 0 then
  wake(KEYS[4])
end
return count
