--- @include "includes/notify.lua"
--- @include "includes/lane_done.lua"
--- @include "includes/lease_lost.lua"
--- @include "includes/dead_letters.lua"
-- Record the outcome a worker reports for one job it leased.
-- The lease token fences it: an outcome from a worker whose lease expired and
-- was taken over (or whose job was cancelled) is discarded, never overwriting
-- the newer attempt.
--   outcome 'completed': value = serialized result, ms = how long to keep it
--                        (0: delete the job at once, -1: keep it forever)
--   outcome 'retry':     value = error JSON, ms = back-off delay
--   outcome 'failed':    value = error JSON (retries exhausted: dead-letter set)
-- Returns false and why when stale (includes/lease_lost.lua); else true and,
-- when jobs wait for this one and it ended (completed or failed), their
-- "queue|id" (the caller resolves them).
-- now: ms on the Redis clock; now_text: the same as text (includes/int_text.lua).
local FOREVER = 1e15

-- A completed job's record is kept as long as its result: it keeps its
-- state, times, attempts, worker, progress and result (and any field not
-- named here), and drops what only running it needed: its arguments
-- (payload, options), the trace context it carried, the jobs it waited for (their results, the count of
-- those pending), the error of an earlier attempt, the mark that jobs wait
-- for it (their list is taken as it ends), the callers waiting (they are
-- woken as it ends). A failed job keeps everything: it may be retried.
local DROPPED = { payload = true, options = true, parents = true, pending = true, error = true,
  dependents = true, waiters = true, trace = true,
  state = true, finished_at = true, result = true } -- (these three: written anew)
local LONG = 64 -- bytes: Redis's hash-max-listpack-value (6.2: -ziplist-), by default

-- payload, parents: the job's fields as read.
local function keep_completed(job_key, payload, parents, now_text, result)
  if #payload <= LONG and not parents then -- the common case: two commands
    redis.call('HSET', job_key, 'state', 'completed', 'finished_at', now_text, 'result', result)
    redis.call('HDEL', job_key, 'payload', 'options', 'error', 'pending', 'dependents', 'trace')
    return
  end
  -- A hash that held a long value keeps Redis's roomy encoding once the value
  -- is gone, about three times the size of the compact one; and the parents'
  -- results have names of their own. The record is written afresh, compact
  -- again (unless its result or progress is long). A long value is most often
  -- the payload: long options or an earlier error alone leave it roomy.
  local old = redis.call('HGETALL', job_key)
  local kept = { 'state', 'completed', 'finished_at', now_text, 'result', result }
  for i = 1, #old, 2 do
    local name = old[i]
    if not (DROPPED[name] or string.sub(name, 1, 7) == 'parent:') then
      kept[#kept + 1] = name
      kept[#kept + 1] = old[i + 1]
    end
  end
  redis.call('DEL', job_key)
  redis.call('HSET', job_key, unpack(kept))
end

local function finish_job(id, token, outcome, value, ms, now, now_text)
  local job_key = keys.job_prefix .. id
  local current = redis.call('HMGET', job_key, 'state', 'lease', 'waiters', 'key', 'dependents',
    'payload', 'parents')
  if current[1] ~= 'active' or current[2] ~= token then
    return false, lease_lost(current[1], current[2], token, outcome)
  end
  redis.call('ZREM', keys.active, id)
  if current[4] then
    lane_done(current[4])
  end
  local ttl = ms  -- kept as sent: Lua would print a large number as 1e+14
  ms = tonumber(ms)
  if outcome == 'completed' then
    if ms == 0 then
      redis.call('DEL', job_key)
    else
      keep_completed(job_key, current[6] or '', current[7], now_text, value)
      redis.call('ZADD', keys.completed, ms > 0 and now + ms or FOREVER, id)
      if ms > 0 then
        redis.call('PEXPIRE', job_key, ttl)
      end
    end
  elseif outcome == 'retry' then
    redis.call('HSET', job_key, 'state', 'scheduled', 'error', value)
    redis.call('ZADD', keys.scheduled, now + ms, id)
    return true -- still in flight: waiters keep waiting
  else
    redis.call('HSET', job_key, 'state', 'failed', 'finished_at', now_text, 'error', value)
    redis.call('ZADD', keys.failed, now_text, id)
    trim_dead_letters(now)
  end
  notify_waiters(id, current[3])
  return true, current[5] and take_dependents(id) or nil
end
