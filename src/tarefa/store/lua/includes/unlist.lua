--- @include "includes/lane_done.lua"
-- Take a job out of whichever index holds it while it has not ended: its lane
-- or the ready list or prioritized zset, the scheduled, waiting and active
-- zsets. key: the job's 'key' field (false: none). An active job's key gets
-- its place back.
local function unlist(id, key)
  if key then
    redis.call('LREM', keys.lane_prefix .. key, 1, id)
  else
    redis.call('LREM', keys.ready, 1, id)
    redis.call('ZREM', keys.prioritized, id)
  end
  redis.call('ZREM', keys.scheduled, id)
  redis.call('ZREM', keys.waiting, id)
  if redis.call('ZREM', keys.active, id) == 1 and key then
    lane_done(key)
  end
end

-- The jobs waiting for this one ("queue|id"), taken: the caller reports its
-- end to them.
local function take_waiting_for(id)
  local dependents = keys.dependents_prefix .. id
  local waiting_for_it = redis.call('LRANGE', dependents, 0, -1)
  redis.call('DEL', dependents)
  return waiting_for_it
end
