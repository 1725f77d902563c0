-- Milliseconds on the Redis server's clock: every lease and due time is judged
-- by this one clock, never by a worker's or a producer's.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
