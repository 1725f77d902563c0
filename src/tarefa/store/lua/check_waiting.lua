--[[ check_waiting: the waiting jobs whose parents are due a check, a safety
net for a parent's end that was never reported (its worker was killed between
recording the outcome and resolving the jobs waiting for it). Moves each one's
next check later.

KEYS     the queue's keys it reads (includes/queue_keys.lua)
ARGV[1]  how many jobs at most
ARGV[2]  ms until their next check

Returns {id, parents JSON (see fetch.lua), ...}.
]]
--- @include "includes/queue_keys.lua"
--- @include "includes/now.lua"

local now = now_ms()
local ids = redis.call('ZRANGEBYSCORE', keys.waiting, '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local reply = {}
for _, id in ipairs(ids) do
  redis.call('ZADD', keys.waiting, now + tonumber(ARGV[2]), id)
  reply[#reply + 1] = id
  reply[#reply + 1] = redis.call('HGET', keys.job_prefix .. id, 'parents') or '{}'
end
return reply
