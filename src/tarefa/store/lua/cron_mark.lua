--[[ cron_mark: record the latest tick a cron task was scheduled for (never
moving it back: workers with older clocks or views may report older ticks).

KEYS[1]  the task's cron mark (a string: tick, in seconds since the epoch)
ARGV[1]  the tick just scheduled

Returns the mark after the call.
]]
local current = tonumber(redis.call('GET', KEYS[1]))
local tick = tonumber(ARGV[1])
if current == nil or tick > current then
  redis.call('SET', KEYS[1], ARGV[1])
  return tick
end
return current
