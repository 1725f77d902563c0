--[[ fetch: the worker's one hot call. Records the outcomes of finished jobs,
recovers a few expired leases, promotes due scheduled jobs, and leases up to N
ready jobs to this worker.

KEYS[1]  job key prefix (tarefa:{q}:job:): a job's key is prefix .. id
KEYS[2]  ready list
KEYS[3]  active zset
KEYS[4]  scheduled zset
KEYS[5]  completed zset
KEYS[6]  failed zset
KEYS[7]  marker zset
KEYS[8]  done list prefix (tarefa:{q}:done:): + job id -> list job.result() waits on
KEYS[9]  prioritized zset
KEYS[10] priority arrival counter
KEYS[11] the queue's paused flag (set: lease nothing)
ARGV[1]  worker id
ARGV[2]  lease in ms: how long a lease lasts unless the worker renews it
ARGV[3]  how many jobs to lease at most (0: only record outcomes)
ARGV[4]  max stalls before a recovered job fails
ARGV[5]  how many outcomes follow; then 5 items each:
         job id, lease token, 'completed' | 'retry' | 'failed', value, ms
         (see includes/finish_job.lua)

Returns {ms until the next scheduled job is due (-1: none), how many jobs are
         active in the queue (leased by any worker), {stale job ids},
         {leased jobs, 7 items each: id, task, payload, attempts, lease token,
          options (JSON of per-call task options, or ''), stalls}}
]]
--- @include "includes/now.lua"
--- @include "includes/finish_job.lua"
--- @include "includes/recover_expired.lua"
--- @include "includes/promote_due.lua"

local prefix = KEYS[1]
local keys = {
  ready = KEYS[2], active = KEYS[3], scheduled = KEYS[4],
  completed = KEYS[5], failed = KEYS[6], marker = KEYS[7], done_prefix = KEYS[8],
  prioritized = KEYS[9], priority_seq = KEYS[10],
}
local worker, lease_ms, want = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
-- Paused: outcomes and recovery go on, but nothing is leased, no one is woken
-- for the work waiting here, and no due time is reported (resume wakes them).
local paused = redis.call('EXISTS', KEYS[11]) == 1
if paused then
  want = 0
end
local now = now_ms()

local stale = {}
local n_outcomes = tonumber(ARGV[5])
for i = 0, n_outcomes - 1 do
  local a = 6 + i * 5
  if not finish_job(prefix, ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], now, keys) then
    stale[#stale + 1] = ARGV[a]
  end
end

if want > 0 then
  recover_expired(prefix, now, 10, tonumber(ARGV[4]), keys)
  promote_due(now, 1000, keys, prefix)
end
-- Kept results expire with their job hash; drop their ids from the index too.
redis.call('ZREMRANGEBYSCORE', keys.completed, '-inf', now)

local leased = {}
-- Jobs with no priority first (the ready list), then by priority.
local popped = want > 0 and redis.call('RPOP', keys.ready, want) or {}
if #popped < want then
  local by_priority = redis.call('ZPOPMIN', keys.prioritized, want - #popped)
  for i = 1, #by_priority, 2 do
    popped[#popped + 1] = by_priority[i]
  end
end
if #popped > 0 then
  local deadline = now + lease_ms
  for _, id in ipairs(popped) do
    local job_key = prefix .. id
    local f = redis.call('HMGET', job_key,
      'state', 'task', 'payload', 'options', 'attempts', 'lease', 'stalls')
    if f[1] == 'queued' and f[2] then
      local attempts = (tonumber(f[5]) or 0) + 1
      local token = (tonumber(f[6]) or 0) + 1
      redis.call('HSET', job_key, 'state', 'active', 'worker', worker, 'started_at', now,
        'attempts', attempts, 'lease', token)
      redis.call('ZADD', keys.active, deadline, id)
      local n = #leased
      leased[n + 1] = id
      leased[n + 2] = f[2]
      leased[n + 3] = f[3]
      leased[n + 4] = attempts
      leased[n + 5] = token
      leased[n + 6] = f[4] or ''
      leased[n + 7] = tonumber(f[7]) or 0
    end
  end
end
-- Work left over (or not taken: no free slot here): wake an idle worker.
if not paused and (redis.call('LLEN', keys.ready) > 0 or redis.call('ZCARD', keys.prioritized) > 0) then
  wake(keys.marker)
end

local next_due = -1
if #leased == 0 and not paused then
  local first = redis.call('ZRANGE', keys.scheduled, 0, 0, 'WITHSCORES')
  if first[2] then
    next_due = math.max(0, tonumber(first[2]) - now)
  end
end
return {next_due, redis.call('ZCARD', keys.active), stale, leased}
