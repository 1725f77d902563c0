--- @include "includes/notify.lua"
--- @include "includes/lane_done.lua"
-- Record the outcome a worker reports for one job it leased.
-- The lease token fences it: an outcome from a worker whose lease expired and
-- was taken over (or whose job was cancelled) is discarded, never overwriting
-- the newer attempt.
--   outcome 'completed': value = serialized result, ms = how long to keep it
--                        (0: delete the job at once, -1: keep it forever)
--   outcome 'retry':     value = error JSON, ms = back-off delay
--   outcome 'failed':    value = error JSON (retries exhausted: dead-letter set)
-- Returns false when stale; else true and, when jobs wait for this one and it
-- ended (completed or failed), their "queue|id" (the caller resolves them).
-- now: ms on the Redis clock; now_text: the same as text (includes/int_text.lua).
local FOREVER = 1e15

local function finish_job(id, token, outcome, value, ms, now, now_text)
  local job_key = keys.job_prefix .. id
  local current = redis.call('HMGET', job_key, 'state', 'lease', 'waiters', 'key', 'dependents')
  if current[1] ~= 'active' or current[2] ~= token then
    return false
  end
  redis.call('ZREM', keys.active, id)
  if current[4] then
    lane_done(current[4])
  end
  local ttl = ms  -- kept as sent: Lua would print a large number as 1e+14
  ms = tonumber(ms)
  if outcome == 'completed' then
    redis.call('HSET', job_key, 'state', 'completed', 'finished_at', now_text, 'result', value)
    if ms == 0 then
      redis.call('DEL', job_key)
    elseif ms > 0 then
      redis.call('ZADD', keys.completed, now + ms, id)
      redis.call('PEXPIRE', job_key, ttl)
    else
      redis.call('ZADD', keys.completed, FOREVER, id)
    end
  elseif outcome == 'retry' then
    redis.call('HSET', job_key, 'state', 'scheduled', 'error', value)
    redis.call('ZADD', keys.scheduled, now + ms, id)
    return true -- still in flight: waiters keep waiting
  else
    redis.call('HSET', job_key, 'state', 'failed', 'finished_at', now_text, 'error', value)
    redis.call('ZADD', keys.failed, now_text, id)
  end
  notify_waiters(id, current[3])
  return true, current[5] and take_dependents(id) or nil
end
