--[[ recover: move jobs whose lease expired back to ready (their worker died or
was cut off), counting a stall; fail those that stalled too often. Run by every
worker at start-up and on each heartbeat, so recovery needs no idle worker to
fetch.

KEYS     the queue's keys it reads (includes/queue_keys.lua)
ARGV[1]  how many jobs at most
ARGV[2]  max stalls before a job fails
ARGV[3]  failed jobs to keep, ARGV[4] ms to keep each, 0 for no bound
         (includes/dead_letters.lua)

Returns {how many leases expired, {jobs failed by stalls that jobs wait for:
{id, 'failed', {"queue|id" of those}} each, for the caller to resolve}, {ids
of jobs lost: their hash is gone (includes/lost.lua)}, {the jobs recovered,
5 items each: id, task, worker that held the lease, stalls, 'queued' |
'failed' (includes/recover_expired.lua)}}.
]]
--- @include "includes/now.lua"
--- @include "includes/recover_expired.lua"

dead_letters.keep, dead_letters.ttl_ms = tonumber(ARGV[3]) or 0, tonumber(ARGV[4]) or 0
local ended, lost, recovered = {}, {}, {}
local count = recover_expired(now_ms(), tonumber(ARGV[1]), tonumber(ARGV[2]), ended, lost,
  recovered)
return {count, ended, lost, recovered}
