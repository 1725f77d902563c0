--[[ record_stats: add a worker's counts to the queue's totals, and once a
minute copy the totals' sums to the queue's history, for the dashboard's
charts (see tarefa.stats).

KEYS     the queue's keys it reads (includes/queue_keys.lua)
ARGV     name/value pairs: a field of the totals ("completed|task") and how
         much to add to it; none to only take the minute's copy if it is due

History entries are text, "ms enqueued started completed failed retried"
(ms on the Redis clock), newest first, for the last 24 hours.
]]
--- @include "includes/queue_keys.lua"
--- @include "includes/now.lua"

local MINUTE_MS, KEEP = 60000, 1440

for i = 1, #ARGV, 2 do
  redis.call('HINCRBY', keys.stats, ARGV[i], ARGV[i + 1])
end

local now = now_ms()
local last = redis.call('LINDEX', keys.history, 0)
if last and math.floor(tonumber(string.match(last, '^%d+')) / MINUTE_MS)
    == math.floor(now / MINUTE_MS) then
  return nil -- this minute's copy is taken
end
local sums = { enqueued = 0, started = 0, completed = 0, failed = 0, retried = 0 }
local totals = redis.call('HGETALL', keys.stats)
for i = 1, #totals, 2 do
  local event = string.match(totals[i], '^([^|]+)|')
  if sums[event] then
    sums[event] = sums[event] + tonumber(totals[i + 1])
  end
end
redis.call('LPUSH', keys.history, table.concat({ now, sums.enqueued, sums.started,
  sums.completed, sums.failed, sums.retried }, ' '))
redis.call('LTRIM', keys.history, 0, KEEP - 1)
return nil
