--[[ resolve: tell a waiting job that one of the jobs it waits for (a parent)
has ended. Idempotent: each parent counts once, however often it is reported
(by the parent's worker, by the producer that enqueued the job, or by the
periodic check of waiting jobs).

KEYS     the waiting job's queue's keys it reads (includes/queue_keys.lua)
ARGV[1]  the waiting job's id
ARGV[2]  the parent, as "queue|id"
ARGV[3]  how the parent ended: 'completed', 'failed' or 'cancelled'
ARGV[4]  the parent's result (serialized; '' when not completed)
ARGV[5]  how long to keep the job if it is cancelled, in ms

Policy: the job runs when every parent has completed. When a parent fails
(retries exhausted) or is cancelled, the job is cancelled with a
DependencyFailed error, and so, in turn, are the jobs waiting for it.

Returns {'released'}, {'waiting'} (more parents to come), {'ignored'} (not
waiting, or this parent was counted already), or {'cancelled', {"queue|id"
of the jobs that waited for it: the caller resolves them in turn}}.
]]
--- @include "includes/now.lua"
--- @include "includes/notify.lua"
--- @include "includes/make_ready.lua"
--- @include "includes/unlist.lua"

local id, parent, outcome = ARGV[1], ARGV[2], ARGV[3]
local job_key = keys.job_prefix .. id
if redis.call('HGET', job_key, 'state') ~= 'waiting' then
  return {'ignored'}
end
-- The parent's result, kept on the job itself: a group's callback gets it
-- even after the parent's own record has expired.
if redis.call('HSETNX', job_key, 'parent:' .. parent, ARGV[4]) == 0 then
  return {'ignored'}
end

if outcome ~= 'completed' then
  local now = now_ms()
  local verb = outcome == 'failed' and ' failed' or ' was cancelled'
  local err = cjson.encode({
    type = 'DependencyFailed',
    message = 'job ' .. parent .. verb .. ', so this job, which waited for it, will not run',
  })
  redis.call('ZREM', keys.waiting, id)
  redis.call('HINCRBY', job_key, 'lease', 1)
  redis.call('HSET', job_key, 'state', 'cancelled', 'finished_at', now, 'error', err)
  notify_waiters(id, redis.call('HGET', job_key, 'waiters'))
  redis.call('PEXPIRE', job_key, ARGV[5])
  return {'cancelled', take_waiting_for(id)}
end

if redis.call('HINCRBY', job_key, 'pending', -1) > 0 then
  return {'waiting'}
end
redis.call('ZREM', keys.waiting, id)
local f = redis.call('HMGET', job_key, 'priority', 'key')
redis.call('HSET', job_key, 'state', 'queued')
make_ready(id, f[1], f[2], false)
return {'released'}
