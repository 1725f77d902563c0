-- Rate limits as a sliding-window log: a zset of the starts in the last
-- period (score: start time), so that no window of that length ever holds
-- more than the limit, whichever workers made the starts.

-- How many may start now, and if none, in how many ms the next one may.
local function rate_room(log, now, limit, period)
  redis.call('ZREMRANGEBYSCORE', log, '-inf', now - period)
  local used = redis.call('ZCARD', log)
  if used < limit then
    return limit - used, 0
  end
  local oldest = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')
  return 0, tonumber(oldest[2]) + period - now
end

-- Count one start (member: unique per attempt).
local function rate_record(log, now, member, period)
  redis.call('ZADD', log, now, member)
  redis.call('PEXPIRE', log, period)
end
