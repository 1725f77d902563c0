--[[ enqueue_many: add a batch of jobs to one queue in one call.

KEYS[1]  job key prefix (tarefa:{q}:job:): a job's key is prefix .. id, in the
         queue's hash slot
KEYS[2]  ready list
KEYS[3]  scheduled zset
KEYS[4]  marker zset
KEYS[5]  prioritized zset
KEYS[6]  priority arrival counter
ARGV[1]  delay in ms (0: run now), the same for every job
ARGV[2]  priority (0: none), the same for every job
ARGV[3]  n: how many name/value items each job has
ARGV[4..] per job: its id, then its n items

Returns one entry per job, as enqueue does: 1 when added, else the state of the
job that already holds that id.
]]
--- @include "includes/now.lua"
--- @include "includes/add_job.lua"

local keys = {
  ready = KEYS[2], scheduled = KEYS[3], marker = KEYS[4],
  prioritized = KEYS[5], priority_seq = KEYS[6],
}
local now = now_ms()
local delay, priority, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local replies = {}
local i = 4
while i <= #ARGV do
  local id = ARGV[i]
  replies[#replies + 1] = add_job(KEYS[1] .. id, id, delay, priority, now, ARGV, i + 1, i + n, keys)
  i = i + n + 1
end
return replies
