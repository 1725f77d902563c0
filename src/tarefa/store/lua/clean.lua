--[[ clean: delete a queue's jobs in one ended state that ended long enough
ago, with their index entries: one bounded batch per call. The caller calls
again with the cursor each call returns, until it returns ''.

KEYS     the queue's keys it reads (includes/queue_keys.lua)
ARGV[1]  the state: 'completed', 'failed' or 'cancelled'
ARGV[2]  ms: a job goes if it ended at least this long ago (0: every one)
ARGV[3]  the cursor: '0' on the first call, then what the last call returned
ARGV[4]  how many entries (index entries, or keys scanned) to look at

Where the jobs of each state are found: failed ones in the dead-letter set
(score: when they failed); completed ones in the completed zset, whose score
is when the result expires, not when the job ended, so each job's
finished_at is read; cancelled ones are in no index (each expires on its
own), so the queue's job keys are scanned (SCAN, cursor and all) and each
read. A job whose state is not the one named is never deleted.

Returns {how many jobs were deleted, the next cursor ('' once done)}.
]]
--- @include "includes/now.lua"
--- @include "includes/queue_keys.lua"

local state, cursor, batch = ARGV[1], ARGV[3], tonumber(ARGV[4])
local cutoff = now_ms() - tonumber(ARGV[2])
local deleted = 0

-- The job, if it is in `state` and ended at or before the cutoff (a record
-- without an end time, of no release tarefa made, is left alone).
local function ended_long_ago(job_key)
  local f = redis.call('HMGET', job_key, 'state', 'finished_at')
  return f[1] == state and tonumber(f[2] or '') ~= nil and tonumber(f[2]) <= cutoff
end

if state == 'cancelled' then
  local found = redis.call('SCAN', cursor, 'MATCH', keys.job_prefix .. '*', 'COUNT', batch)
  for _, job_key in ipairs(found[2]) do
    if ended_long_ago(job_key) then
      redis.call('DEL', job_key)
      deleted = deleted + 1
    end
  end
  return {deleted, found[1] == '0' and '' or found[1]}
end

-- A zset, read by rank from the cursor: the jobs deleted leave it, the others
-- stay and are stepped over.
local index, ids = keys.failed, nil
local offset = tonumber(cursor)
if state == 'failed' then
  ids = redis.call('ZRANGEBYSCORE', index, '-inf', cutoff, 'LIMIT', offset, batch)
elseif state == 'completed' then
  index = keys.completed
  ids = redis.call('ZRANGE', index, offset, offset + batch - 1)
else
  return redis.error_reply('clean: no such state ' .. state)
end
for _, id in ipairs(ids) do
  local job_key = keys.job_prefix .. id
  if ended_long_ago(job_key) then
    redis.call('ZREM', index, id)
    redis.call('DEL', job_key)
    deleted = deleted + 1
  end
end
if #ids < batch then
  return {deleted, ''}
end
return {deleted, tostring(offset + #ids - deleted)}
