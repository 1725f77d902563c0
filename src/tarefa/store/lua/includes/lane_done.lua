--- @include "includes/lanes.lua"
-- One of the key's jobs stopped being active (finished, handed back,
-- recovered, cancelled): count it, and give the key a turn if it has work.
local function lane_done(key)
  if redis.call('HINCRBY', keys.lane_active, key, -1) <= 0 then
    redis.call('HDEL', keys.lane_active, key)
  end
  if redis.call('LLEN', keys.lane_prefix .. key) > 0 then
    open_lane(key)
  end
end
