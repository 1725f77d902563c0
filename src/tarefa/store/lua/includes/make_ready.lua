--- @include "includes/wake.lua"
-- Put a job where workers take it from: the ready list (FIFO), or, when it has
-- a priority, the prioritized zset, smaller number first and FIFO within one
-- priority (score: priority, then arrival). Wakes idle workers when this made
-- queued work appear where there was none.
local PRIORITY_STEP = 4294967296 -- 2^32 arrivals per priority before order wraps

local function make_ready(id, priority, keys)
  priority = tonumber(priority)
  if priority and priority > 0 then
    local arrival = redis.call('INCR', keys.priority_seq) % PRIORITY_STEP
    redis.call('ZADD', keys.prioritized, priority * PRIORITY_STEP + arrival, id)
    if redis.call('ZCARD', keys.prioritized) == 1 then
      wake(keys.marker)
    end
  elseif redis.call('LPUSH', keys.ready, id) == 1 then
    -- When the list was not empty, whoever filled it woke the workers, and a
    -- worker leaving work behind wakes the next one.
    wake(keys.marker)
  end
end
