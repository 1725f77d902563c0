--[[ fetch: the worker's one hot call. Records the outcomes of finished jobs,
recovers a few expired leases, promotes due scheduled jobs, and leases up to N
ready jobs to this worker, within the queue's limits.

KEYS     the queue's keys it reads (includes/queue_keys.lua)
ARGV[1]  worker id
ARGV[2]  lease in ms: how long a lease lasts unless the worker renews it
ARGV[3]  how many jobs to lease at most (0: only record outcomes)
ARGV[4]  max stalls before a recovered job fails
ARGV[5]  the queue's limits, 0 for none: ARGV[5] starts per ARGV[6] ms (the
         queue's rate); ARGV[7] starts per ARGV[8] ms for each key; ARGV[9]
         active jobs per key; ARGV[10] completed jobs to keep (beyond them,
         those whose result expires soonest are deleted); ARGV[11] failed
         jobs to keep, ARGV[12] ms to keep each (includes/dead_letters.lua)
ARGV[13] the lease tokens' base, drawn at random by the caller for this call
         (store/tokens.py): the i-th job leased (from 0) gets base + i
ARGV[14] how many outcomes follow; then 5 items each:
         job id, lease token, 'completed' | 'retry' | 'failed', value, ms
         (see includes/finish_job.lua)

Jobs are leased in this order: without a priority or key (the ready list,
FIFO), then with a key (keys take turns, one job per turn), then by priority.

Returns {ms until this queue may have work again: the next scheduled job, a
         key's or the queue's rate limit (-1: nothing pending), how many jobs
         are active in the queue (leased by any worker), {outcomes discarded:
         job id, why (includes/lease_lost.lua), 2 items each},
         {leased jobs, 9 items each: id, task, payload, attempts, lease token,
          options (JSON of per-call task options, or ''), stalls, {results of
          the jobs it waited for} when it takes them (a group's callback),
          else nil, the trace context it carries (src/tarefa/tracing.py), or
          nil},
         {jobs that ended (an outcome, or too many stalls) with jobs waiting
          for them: {id, outcome, {"queue|id" of those}} each, for the caller
          to resolve},
         {ids of jobs lost: in an index, but their hash is gone (evicted, or
          deleted by hand; includes/lost.lua)},
         {jobs whose expired lease it recovered, 5 items each (as recover.lua)}}
]]
--- @include "includes/now.lua"
--- @include "includes/int_text.lua"
--- @include "includes/finish_job.lua"
--- @include "includes/recover_expired.lua"
--- @include "includes/promote_due.lua"
--- @include "includes/rate_limit.lua"

local worker, lease_ms, want = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local rate_n, rate_ms = tonumber(ARGV[5]), tonumber(ARGV[6])
local key_rate_n, key_rate_ms, key_limit = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local keep_completed = tonumber(ARGV[10])
dead_letters.keep, dead_letters.ttl_ms = tonumber(ARGV[11]), tonumber(ARGV[12])
-- Paused: outcomes and recovery go on, but nothing is leased, no one is woken
-- for the work waiting here, and no due time is reported (resume wakes them).
local paused = redis.call('EXISTS', keys.paused) == 1
if paused then
  want = 0
end
local now = now_ms()
local now_text = int_text(now)

-- Kept results expire with their job hash; drop their ids from the index too.
-- This is the script's first write, and it needs no memory: a full Redis
-- (maxmemory, noeviction) refuses a script at its first command that may
-- need memory unless a write came before it (Redis 6.2 and 7 alike), so
-- workers go on leasing and finishing jobs, which is how a full Redis drains.
redis.call('ZREMRANGEBYSCORE', keys.completed, '-inf', now)

local stale, ended, lost, recovered = {}, {}, {}, {}
local n_outcomes = tonumber(ARGV[14])
for i = 0, n_outcomes - 1 do
  local a = 15 + i * 5
  -- detail: why it is stale, else the jobs waiting for it (if it ended)
  local applied, detail = finish_job(ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3],
    ARGV[a + 4], now, now_text)
  if not applied then
    stale[#stale + 1] = ARGV[a]
    stale[#stale + 1] = detail
  elseif detail then
    ended[#ended + 1] = {ARGV[a], ARGV[a + 2], detail}
  end
end

if want > 0 then
  recover_expired(now, 10, tonumber(ARGV[4]), ended, lost, recovered)
  promote_due(now, 1000, lost)
end
if keep_completed > 0 then
  local over = redis.call('ZCARD', keys.completed) - keep_completed
  if over > 0 then
    local dropped = redis.call('ZPOPMIN', keys.completed, math.min(over, 1000))
    for i = 1, #dropped, 2 do
      redis.call('DEL', keys.job_prefix .. dropped[i])
    end
  end
end

-- The queue's rate limit caps this whole fetch.
if rate_n > 0 and want > 0 then
  want = math.min(want, (rate_room(keys.rate, now, rate_n, rate_ms)))
end

local leased = {}
local count = 0
local deadline = int_text(now + lease_ms)
-- Lease tokens are drawn at random by the caller, not counted here: a replica
-- promoted after its master died has not seen the master's last leases, and a
-- counter would hand out their tokens again, to new attempts of the same jobs
-- whose old attempts still run. Nor may a job deleted (or purged) while it
-- runs and enqueued again under its id give its new attempt the old one's
-- token. Random tokens repeat in neither case, but by a chance in trillions.
local token_base = tonumber(ARGV[13])

-- The results of the jobs a group's callback waited for, in their order
-- (false when the job takes none).
-- parents: JSON {"takes_results": true|false, "parents": ["queue|id", ...]}
local function parent_results(job_key, parents)
  local spec = cjson.decode(parents)
  if not spec.takes_results then
    return false
  end
  local results = {}
  for i, parent in ipairs(spec.parents) do
    results[i] = redis.call('HGET', job_key, 'parent:' .. parent)
  end
  return results
end

-- Lease one job, if it is still queued (else skip it; count it lost if its
-- hash is gone).
local function lease(id)
  local job_key = keys.job_prefix .. id
  local f = redis.call('HMGET', job_key,
    'state', 'task', 'payload', 'options', 'attempts', 'lease', 'stalls', 'key', 'parents',
    'progress', 'trace')
  if f[1] ~= 'queued' or not f[2] then
    if not f[1] then
      job_lost(id, lost)
    end
    return false
  end
  local attempts = (tonumber(f[5]) or 0) + 1
  -- Never the token of the job's last attempt, whatever the draw.
  local token = token_base + count
  if token == tonumber(f[6]) then
    token = token + 1
  end
  token = int_text(token) -- text, as the lease field and the reply hold it
  redis.call('HSET', job_key, 'state', 'active', 'worker', worker, 'started_at', now_text,
    'attempts', attempts, 'lease', token)
  if f[10] then
    redis.call('HDEL', job_key, 'progress') -- a new attempt starts from nothing
  end
  redis.call('ZADD', keys.active, deadline, id)
  if rate_n > 0 then
    rate_record(keys.rate, now, id .. ':' .. token, rate_ms)
  end
  if f[8] then
    redis.call('HINCRBY', keys.lane_active, f[8], 1)
    if key_rate_n > 0 then
      rate_record(keys.lane_rate_prefix .. f[8], now, id .. ':' .. token, key_rate_ms)
    end
  end
  local n = #leased
  leased[n + 1] = id
  leased[n + 2] = f[2]
  leased[n + 3] = f[3]
  leased[n + 4] = attempts
  leased[n + 5] = token
  leased[n + 6] = f[4] or ''
  leased[n + 7] = tonumber(f[7]) or 0
  -- false (nil in the reply) when it takes no results: an empty table for
  -- every job would cost the server about as much as a command.
  leased[n + 8] = f[9] and parent_results(job_key, f[9])
  leased[n + 9] = f[11]
  count = count + 1
  return true
end

-- 1. Jobs with neither priority nor key: the ready list.
if want > 0 then
  for _, id in ipairs(redis.call('RPOP', keys.ready, want) or {}) do
    lease(id)
  end
end

-- 2. Jobs with a key: keys take turns, one job per turn. A key at its
-- concurrency limit drops out until one of its jobs ends (includes/lanes.lua);
-- one at its rate limit waits in lanes_waiting until it may start again.
local turns = 0
while count < want and turns < want + 100 do
  local head = redis.call('ZPOPMIN', keys.lanes)
  if #head == 0 then
    break
  end
  turns = turns + 1
  local key = head[1]
  local lane = keys.lane_prefix .. key
  local active = tonumber(redis.call('HGET', keys.lane_active, key)) or 0
  if key_limit == 0 or active < key_limit then
    local wait = 0
    if key_rate_n > 0 then
      local _
      _, wait = rate_room(keys.lane_rate_prefix .. key, now, key_rate_n, key_rate_ms)
    end
    if wait > 0 then
      redis.call('ZADD', keys.lanes_waiting, now + wait, key)
    else
      local id = redis.call('RPOP', lane)
      if id then
        lease(id)
        if redis.call('LLEN', lane) > 0 then -- its next turn: after the others'
          redis.call('ZADD', keys.lanes, redis.call('INCR', keys.priority_seq), key)
        end
      end
    end
  end
end

-- 3. Jobs with a priority.
if count < want then
  local by_priority = redis.call('ZPOPMIN', keys.prioritized, want - count)
  for i = 1, #by_priority, 2 do
    lease(by_priority[i])
  end
end

local left = redis.call('LLEN', keys.ready) > 0 or redis.call('ZCARD', keys.prioritized) > 0
  or redis.call('ZCARD', keys.lanes) > 0
-- Held back by the queue's rate limit: ms until it lets one more start.
local rate_wait = 0
if rate_n > 0 and left then
  local _
  _, rate_wait = rate_room(keys.rate, now, rate_n, rate_ms)
end
-- Work left over (or not taken: no free slot here): wake an idle worker,
-- unless the rate limit holds it back anyway.
if not paused and left and rate_wait == 0 then
  wake()
end

local next_due = -1
if count == 0 and not paused then
  local dues = {}
  local first = redis.call('ZRANGE', keys.scheduled, 0, 0, 'WITHSCORES')
  if first[2] then
    dues[#dues + 1] = tonumber(first[2]) - now
  end
  first = redis.call('ZRANGE', keys.lanes_waiting, 0, 0, 'WITHSCORES')
  if first[2] then
    dues[#dues + 1] = tonumber(first[2]) - now
  end
  if rate_wait > 0 then
    dues[#dues + 1] = rate_wait
  end
  if #dues > 0 then
    next_due = math.max(0, math.min(unpack(dues)))
  end
end
return {next_due, redis.call('ZCARD', keys.active), stale, leased, ended, lost, recovered}
