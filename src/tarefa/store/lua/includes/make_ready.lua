--- @include "includes/lanes.lua"
-- Put a job where workers take it from, and wake idle workers when this made
-- work appear where there was none:
--   with a key:      its lane (FIFO within the key; keys take turns);
--   with a priority: the prioritized zset, smaller number first, FIFO within
--                    one priority (score: priority, then arrival);
--   else:            the ready list (FIFO).
-- front: the job was running and is back (recovered, handed back): it goes
-- first in its lane, priority or list rather than last.
local PRIORITY_STEP = 4294967296 -- 2^32 arrivals per priority before order wraps

local function make_ready(id, priority, key, front)
  priority = tonumber(priority)
  if key and key ~= '' then
    local lane = keys.lane_prefix .. key
    local n = redis.call(front and 'RPUSH' or 'LPUSH', lane, id)
    if n == 1 then
      open_lane(key)
    end
  elseif priority and priority > 0 then
    local arrival = front and 0 or redis.call('INCR', keys.priority_seq) % PRIORITY_STEP
    redis.call('ZADD', keys.prioritized, priority * PRIORITY_STEP + arrival, id)
    if redis.call('ZCARD', keys.prioritized) == 1 then
      wake()
    end
  elseif redis.call(front and 'RPUSH' or 'LPUSH', keys.ready, id) == 1 then
    -- When the list was not empty, whoever filled it woke the workers, and a
    -- worker leaving work behind wakes the next one.
    wake()
  end
end
