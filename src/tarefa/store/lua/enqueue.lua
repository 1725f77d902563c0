--[[ enqueue: add one job to a queue, to run now or after a delay.

KEYS[1]  job hash (tarefa:{q}:job:<id>)
KEYS[2]  ready list
KEYS[3]  scheduled zset
KEYS[4]  marker zset
ARGV[1]  job id
ARGV[2]  delay in ms (0: run now)
ARGV[3..] the job's fields as name/value pairs (task, payload, options)

Returns 1 when added; when a job with this id exists (queued, scheduled,
active, or finished and still kept) nothing is added and its state is returned.
]]
--- @include "includes/now.lua"
--- @include "includes/add_job.lua"

return add_job(KEYS[1], ARGV[1], tonumber(ARGV[2]), now_ms(), ARGV, 3, #ARGV,
  KEYS[2], KEYS[3], KEYS[4])
