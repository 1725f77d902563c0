--[[ retry: send a failed job (from the dead-letter set) back to run again,
with a fresh count of attempts and stalls.

KEYS[1]  job hash
KEYS[2]  ready list
KEYS[3]  failed zset
KEYS[4]  marker zset
KEYS[5]  prioritized zset
KEYS[6]  priority arrival counter
ARGV[1]  job id

Returns 1 when the job was re-queued, else its state ('' when it does not exist).
]]
--- @include "includes/make_ready.lua"

local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'failed' then
  return state or ''
end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'queued', 'attempts', 0, 'stalls', 0)
redis.call('HDEL', KEYS[1], 'finished_at')
local keys = { ready = KEYS[2], marker = KEYS[4], prioritized = KEYS[5], priority_seq = KEYS[6] }
make_ready(ARGV[1], redis.call('HGET', KEYS[1], 'priority'), keys)
return 1
