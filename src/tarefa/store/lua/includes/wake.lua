-- Tell idle workers blocked on the marker (BZPOPMIN) that something changed.
-- One member is enough: whoever wakes fetches and, if work is left over,
-- wakes the next one.
local function wake(marker)
  redis.call('ZADD', marker, 0, 'm')
end
