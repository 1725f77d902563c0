-- Move scheduled jobs whose time has come (retry back-off, delays) to ready.
local function promote_due(now, limit, keys, prefix)
  local ids = redis.call('ZRANGEBYSCORE', keys.scheduled, '-inf', now, 'LIMIT', 0, limit)
  if #ids == 0 then
    return 0
  end
  redis.call('ZREM', keys.scheduled, unpack(ids))
  for _, id in ipairs(ids) do
    if redis.call('EXISTS', prefix .. id) == 1 then  -- deleted meanwhile: drop it
      redis.call('HSET', prefix .. id, 'state', 'queued')
      redis.call('LPUSH', keys.ready, id)
    end
  end
  return #ids
end
