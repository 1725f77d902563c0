--- @include "includes/make_ready.lua"
-- Move scheduled jobs whose time has come (retry back-off, delays) to ready.
local function promote_due(now, limit, keys, prefix)
  local ids = redis.call('ZRANGEBYSCORE', keys.scheduled, '-inf', now, 'LIMIT', 0, limit)
  if #ids == 0 then
    return 0
  end
  redis.call('ZREM', keys.scheduled, unpack(ids))
  for _, id in ipairs(ids) do
    local job_key = prefix .. id
    local priority = redis.call('HGET', job_key, 'priority')
    if redis.call('EXISTS', job_key) == 1 then -- deleted meanwhile: drop it
      redis.call('HSET', job_key, 'state', 'queued')
      make_ready(id, priority, keys)
    end
  end
  return #ids
end
