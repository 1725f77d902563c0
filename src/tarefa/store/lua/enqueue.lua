--[[ enqueue: add one job to a queue, to run now or after a delay.

KEYS[1]  job hash (tarefa:{q}:job:<id>)
KEYS[2]  ready list
KEYS[3]  scheduled zset
KEYS[4]  marker zset
KEYS[5]  prioritized zset
KEYS[6]  priority arrival counter
ARGV[1]  job id
ARGV[2]  delay in ms (0: run now)
ARGV[3]  priority (0: none; else smaller runs sooner)
ARGV[4..] the job's fields as name/value pairs (task, payload, options)

Returns 1 when added; when a job with this id exists (queued, scheduled,
active, or finished and still kept) nothing is added and its state is returned.
]]
--- @include "includes/now.lua"
--- @include "includes/add_job.lua"

local keys = {
  ready = KEYS[2], scheduled = KEYS[3], marker = KEYS[4],
  prioritized = KEYS[5], priority_seq = KEYS[6],
}
return add_job(KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), now_ms(),
  ARGV, 4, #ARGV, keys)
