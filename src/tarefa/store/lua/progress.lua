--[[ progress: a running job reports how far it got.

KEYS     the queue's keys it reads (includes/queue_keys.lua)
ARGV[1]  job id
ARGV[2]  lease token of the reporting attempt
ARGV[3]  progress as JSON ({"value": ..., "message": ...})

Returns 1 when stored; 0 when that attempt no longer holds the job (its lease
was taken over, or the job ended): a stale report never overwrites.
]]
--- @include "includes/queue_keys.lua"

local job_key = keys.job_prefix .. ARGV[1]
local current = redis.call('HMGET', job_key, 'state', 'lease')
if current[1] ~= 'active' or current[2] ~= ARGV[2] then
  return 0
end
redis.call('HSET', job_key, 'progress', ARGV[3])
return 1
