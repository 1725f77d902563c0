--- @include "includes/queue_keys.lua"
-- A lost job: its id is in one of the queue's indexes (ready, a lane, the
-- prioritized, scheduled, active or waiting zset) but its hash is gone.
-- tarefa deletes a job's hash and its index entries in one script, so this
-- is a hash that Redis evicted (a maxmemory-policy other than noeviction) or
-- that someone deleted by hand. Never skipped silently: counted in the
-- queue's stats ("lost|", with no task: its name went with the hash; see
-- tarefa.stats), and its id added to `lost`, for the worker to log.
local function job_lost(id, lost)
  redis.call('HINCRBY', keys.stats, 'lost|', 1)
  lost[#lost + 1] = id
end
