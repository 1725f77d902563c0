--- @include "includes/make_ready.lua"
--- @include "includes/lost.lua"
-- Move scheduled jobs whose time has come (retry back-off, delays) to ready
-- (ready_at: since when it waits to start, for the oldest-job age), and give
-- keys whose rate limit has passed their turn again. Ids whose job is gone
-- are added to lost (includes/lost.lua).
local function promote_due(now, limit, lost)
  local ids = redis.call('ZRANGEBYSCORE', keys.scheduled, '-inf', now, 'LIMIT', 0, limit)
  if #ids > 0 then
    redis.call('ZREM', keys.scheduled, unpack(ids))
    for _, id in ipairs(ids) do
      local job_key = keys.job_prefix .. id
      local f = redis.call('HMGET', job_key, 'state', 'priority', 'key')
      if f[1] then
        redis.call('HSET', job_key, 'state', 'queued', 'ready_at', now)
        make_ready(id, f[2], f[3], false)
      else
        job_lost(id, lost)
      end
    end
  end
  local due_keys = redis.call('ZRANGEBYSCORE', keys.lanes_waiting, '-inf', now, 'LIMIT', 0, limit)
  for _, key in ipairs(due_keys) do
    redis.call('ZREM', keys.lanes_waiting, key)
    if redis.call('LLEN', keys.lane_prefix .. key) > 0 then
      open_lane(key)
    end
  end
end
