--- @include "includes/queue_keys.lua"
-- The dead-letter set (keys.failed, score: when the job failed) is bounded,
-- like Sidekiq's dead set: at most dead_letters.keep jobs, none failed more
-- than dead_letters.ttl_ms ago (0: no such bound). A script that fails jobs
-- sets both from its arguments (tarefa.limits: QueueSettings) and calls
-- trim_dead_letters after each job it adds, so the set is trimmed as jobs
-- fail, with no polling. Both bounds drop the oldest first. One call deletes
-- at most DEAD_LETTER_STEP jobs, so it stays short however far over its
-- bounds the set is (they were lowered, or many aged out at once): each
-- failure after that takes it closer.
local dead_letters = { keep = 0, ttl_ms = 0 }
local DEAD_LETTER_STEP = 100

-- now: ms on the Redis clock.
local function trim_dead_letters(now)
  local oldest = {}
  if dead_letters.keep > 0 then
    local over = redis.call('ZCARD', keys.failed) - dead_letters.keep
    if over > 0 then
      oldest = redis.call('ZRANGE', keys.failed, 0, math.min(over, DEAD_LETTER_STEP) - 1)
    end
  end
  if dead_letters.ttl_ms > 0 and #oldest < DEAD_LETTER_STEP then
    -- The same order as by rank, so the longer of the two lists holds the other.
    local aged = redis.call('ZRANGEBYSCORE', keys.failed, '-inf', now - dead_letters.ttl_ms,
      'LIMIT', 0, DEAD_LETTER_STEP)
    if #aged > #oldest then
      oldest = aged
    end
  end
  if #oldest == 0 then
    return
  end
  -- Index entries first: writes that free memory (a full Redis runs the rest).
  redis.call('ZREM', keys.failed, unpack(oldest))
  for _, id in ipairs(oldest) do
    local job_key = keys.job_prefix .. id
    -- Only a job that is still failed: an entry left behind for a job that
    -- has moved on since is dropped from the index, and the job kept.
    if redis.call('HGET', job_key, 'state') == 'failed' then
      redis.call('DEL', job_key)
    end
  end
end
