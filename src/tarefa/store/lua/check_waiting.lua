--[[ check_waiting: the waiting jobs whose parents are due a check, a safety
net for a parent's end that was never reported (its worker was killed between
recording the outcome and resolving the jobs waiting for it). Moves each one's
next check later.

KEYS     the queue's keys it reads (includes/queue_keys.lua)
ARGV[1]  how many jobs at most
ARGV[2]  ms until their next check

Returns {{id, parents JSON (see fetch.lua), ...}, {ids of jobs lost: their
hash is gone (includes/lost.lua)}}.
]]
--- @include "includes/queue_keys.lua"
--- @include "includes/now.lua"
--- @include "includes/lost.lua"

local now = now_ms()
local ids = redis.call('ZRANGEBYSCORE', keys.waiting, '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local reply, lost = {}, {}
for _, id in ipairs(ids) do
  local state, parents = unpack(redis.call('HMGET', keys.job_prefix .. id, 'state', 'parents'))
  if state then
    redis.call('ZADD', keys.waiting, now + tonumber(ARGV[2]), id)
    reply[#reply + 1] = id
    reply[#reply + 1] = parents or '{}'
  else
    redis.call('ZREM', keys.waiting, id)
    job_lost(id, lost)
  end
end
return {reply, lost}
