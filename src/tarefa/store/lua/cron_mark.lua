--[[ cron_mark: record the latest tick a cron task was scheduled for (never
moving it back: workers with older clocks or views may report older ticks).

KEYS     the queue's keys (includes/queue_keys.lua)
ARGV[1]  the task's name
ARGV[2]  the tick just scheduled (seconds since the epoch)

Returns the mark after the call.
]]
--- @include "includes/queue_keys.lua"

local mark = keys.cron_prefix .. ARGV[1]
local current = tonumber(redis.call('GET', mark))
local tick = tonumber(ARGV[2])
if current == nil or tick > current then
  redis.call('SET', mark, ARGV[2])
  return tick
end
return current
