--- @include "includes/wake.lua"
-- Lanes: jobs enqueued with a key (one CRM account, one tenant) wait in their
-- key's own list, and the keys take turns (the lanes zset, in arrival order),
-- so one busy key cannot starve the others, and a key at its concurrency or
-- rate limit holds back only its own jobs.
--
-- A key with ready jobs is in exactly one of: the lanes zset (may run now),
-- the lanes_waiting zset (rate-limited until a time), or neither (at its
-- concurrency limit: the end of one of its jobs gives it a turn again, see
-- includes/lane_done.lua).

-- Give a key a turn, unless it has one or waits for its rate limit.
local function open_lane(key)
  if redis.call('ZSCORE', keys.lanes, key) or redis.call('ZSCORE', keys.lanes_waiting, key) then
    return
  end
  redis.call('ZADD', keys.lanes, redis.call('INCR', keys.priority_seq), key)
  if redis.call('ZCARD', keys.lanes) == 1 then
    wake()
  end
end
