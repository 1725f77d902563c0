--[[ cancel: end a job that has not finished, wherever it is.

KEYS[1]  job hash
KEYS[2]  ready list
KEYS[3]  prioritized zset
KEYS[4]  scheduled zset
KEYS[5]  active zset
KEYS[6]  the job's done list (callers blocked in job.result())
ARGV[1]  job id
ARGV[2]  how long to keep the cancelled job, in ms

A running attempt loses its lease (the token moves on): its worker's next
heartbeat learns it and stops the job, and whatever it reports is discarded.
Returns 1 when cancelled, else the job's state ('' when it does not exist).
]]
--- @include "includes/now.lua"
--- @include "includes/notify.lua"

local id = ARGV[1]
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'queued' and state ~= 'scheduled' and state ~= 'active' then
  return state or ''
end
redis.call('LREM', KEYS[2], 1, id)
redis.call('ZREM', KEYS[3], id)
redis.call('ZREM', KEYS[4], id)
redis.call('ZREM', KEYS[5], id)
redis.call('HINCRBY', KEYS[1], 'lease', 1)
redis.call('HSET', KEYS[1], 'state', 'cancelled', 'finished_at', now_ms())
notify_waiters(KEYS[1], KEYS[6], redis.call('HGET', KEYS[1], 'waiters'))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
