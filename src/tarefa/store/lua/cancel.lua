--[[ cancel: end a job that has not finished, wherever it is.

KEYS     the queue's keys it reads (includes/queue_keys.lua)
ARGV[1]  job id
ARGV[2]  how long to keep the cancelled job, in ms

A running attempt loses its lease (the token moves on): its worker's next
heartbeat learns it and stops the job, and whatever it reports is discarded.
Returns {1, {"queue|id" of the jobs waiting for it: the caller resolves them}}
when cancelled, else the job's state ('' when it does not exist).
]]
--- @include "includes/now.lua"
--- @include "includes/notify.lua"
--- @include "includes/unlist.lua"

local id = ARGV[1]
local job_key = keys.job_prefix .. id
local f = redis.call('HMGET', job_key, 'state', 'key', 'waiters')
local state, key = f[1], f[2]
if state ~= 'queued' and state ~= 'scheduled' and state ~= 'active' and state ~= 'waiting' then
  return state or ''
end
unlist(id, key)
redis.call('HINCRBY', job_key, 'lease', 1)
redis.call('HSET', job_key, 'state', 'cancelled', 'finished_at', now_ms())
notify_waiters(id, f[3])
redis.call('PEXPIRE', job_key, ARGV[2])
return {1, take_waiting_for(id)}
