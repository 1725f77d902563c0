--- @include "includes/make_ready.lua"
-- Add one job, unless a job with this id exists already (de-duplication by id).
-- Its fields (task, payload, options: name/value pairs) are fields[first..last],
-- the task's name first (fields[first + 1]).
-- how: {delay = ms (0: now), priority = n (0: none), key = '' (none) or its
-- key, waits = how many jobs it waits for (0: none; see resolve.lua),
-- counted_by_caller = true when the caller counts its enqueues itself (a
-- batch: one HINCRBY per call), durable = true when the caller waits for the
-- fsync of this call's writes (WAITAOF, see cover_for_durable)}.
-- Returns 1 when added, else the state of the job that already holds the id.
local WAITING_CHECK_MS = 30000 -- how often a waiting job's parents are checked

-- WAITAOF waits for the fsync of the writes its own connection made, and no
-- others. A durable call that finds its job made already (by an attempt of
-- this same call whose reply was lost, retried on a new connection, or by
-- another producer) would write nothing, and be told at once that its job is
-- on disk when that earlier write may not be yet. Setting a field to the value
-- it has changes nothing, but is a write of this call's, after the job's own:
-- the fsync WAITAOF waits for covers both.
local function cover_for_durable(job_key, state)
  redis.call('HSET', job_key, 'state', state)
end

local function add_job(id, how, now, fields, first, last)
  local job_key = keys.job_prefix .. id
  local existing = redis.call('HGET', job_key, 'state')
  if existing then
    if how.durable then
      cover_for_durable(job_key, existing)
    end
    return existing
  end
  local state = how.waits > 0 and 'waiting' or (how.delay > 0 and 'scheduled' or 'queued')
  redis.call('HSET', job_key, 'state', state, 'enqueued_at', now, unpack(fields, first, last))
  if not how.counted_by_caller then
    redis.call('HINCRBY', keys.stats, 'enqueued|' .. fields[first + 1], 1) -- see tarefa.stats
  end
  if how.priority > 0 then
    redis.call('HSET', job_key, 'priority', how.priority)
  end
  if how.key ~= '' then
    redis.call('HSET', job_key, 'key', how.key)
  end
  if how.waits > 0 then
    -- Its parents' ends release it (resolve.lua); the check time is a safety
    -- net for an end whose report was lost (a worker killed in between).
    redis.call('HSET', job_key, 'pending', how.waits)
    redis.call('ZADD', keys.waiting, now + WAITING_CHECK_MS, id)
  elseif how.delay > 0 then
    local earliest = redis.call('ZRANGE', keys.scheduled, 0, 0, 'WITHSCORES')
    redis.call('ZADD', keys.scheduled, now + how.delay, id)
    -- Only a new earliest due time changes how long idle workers should sleep.
    if earliest[2] == nil or now + how.delay < tonumber(earliest[2]) then
      wake()
    end
  else
    make_ready(id, how.priority, how.key, false)
  end
  return 1
end
