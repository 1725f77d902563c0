--[[ heartbeat: renew the leases of all the jobs one worker runs in a queue.

KEYS     the queue's keys it reads (includes/queue_keys.lua)
ARGV[1]  lease in ms, counted from now
ARGV[2..] pairs: job id, lease token

Returns id, token, why, id, token, why...: the attempts whose lease this
worker no longer holds, their outcome to be discarded, and why, as
includes/lease_lost.lua tells it ('deleted', 'cancelled', 'taken_over'). Tokens, not ids alone: the same worker may
hold a newer attempt of the same job, which must go on.
]]
--- @include "includes/queue_keys.lua"
--- @include "includes/now.lua"
--- @include "includes/int_text.lua"
--- @include "includes/lease_lost.lua"

-- With memory full (maxmemory, noeviction) Redis refuses a script whose first
-- write may allocate. Renewing leases allocates nothing and must go on (else
-- recovery takes over a live worker's jobs), so the first write is one that
-- cannot allocate: removing a member that is never there.
redis.call('ZREM', keys.active, '')

local deadline = int_text(now_ms() + tonumber(ARGV[1]))
local lost = {}
for i = 2, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local current = redis.call('HMGET', keys.job_prefix .. id, 'state', 'lease')
  if current[1] == 'active' and current[2] == token then
    redis.call('ZADD', keys.active, 'XX', deadline, id)
  else
    lost[#lost + 1] = id
    lost[#lost + 1] = token
    lost[#lost + 1] = lease_lost(current[1], current[2], token, nil)
  end
end
return lost
