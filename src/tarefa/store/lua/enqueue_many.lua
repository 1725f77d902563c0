--[[ enqueue_many: add a batch of jobs to one queue in one call.

KEYS     the queue's keys (includes/queue_keys.lua)
ARGV[1]  delay in ms (0: run now), the same for every job
ARGV[2]  priority (0: none), the same for every job
ARGV[3]  key ('' none), the same for every job
ARGV[4]  n: how many name/value items each job has
ARGV[5..] per job: its id, then its n items

Returns one entry per job, as enqueue does: 1 when added, else the state of the
job that already holds that id.
]]
--- @include "includes/now.lua"
--- @include "includes/add_job.lua"

local now = now_ms()
local delay, priority, key, n = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local replies = {}
local i = 5
while i <= #ARGV do
  replies[#replies + 1] = add_job(ARGV[i], delay, priority, key, now, ARGV, i + 1, i + n)
  i = i + n + 1
end
return replies
