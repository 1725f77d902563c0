--[[ progress: a running job reports how far it got.

KEYS[1]  job hash
ARGV[1]  lease token of the reporting attempt
ARGV[2]  progress as JSON ({"value": ..., "message": ...})

Returns 1 when stored; 0 when that attempt no longer holds the job (its lease
was taken over, or the job ended): a stale report never overwrites.
]]
local current = redis.call('HMGET', KEYS[1], 'state', 'lease')
if current[1] ~= 'active' or current[2] ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'progress', ARGV[2])
return 1
