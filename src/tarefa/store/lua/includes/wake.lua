--- @include "includes/queue_keys.lua"
-- Tell idle workers blocked on the marker (BZPOPMIN) that something changed.
-- One member is enough: whoever wakes fetches and, if work is left over,
-- wakes the next one.
local function wake()
  redis.call('ZADD', keys.marker, 0, 'm')
end
