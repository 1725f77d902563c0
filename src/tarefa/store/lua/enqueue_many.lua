--[[ enqueue_many: add a batch of jobs to one queue in one call.

KEYS[1]  job key prefix (tarefa:{q}:job:): a job's key is prefix .. id, in the
         queue's hash slot
KEYS[2]  ready list
KEYS[3]  scheduled zset
KEYS[4]  marker zset
ARGV[1]  delay in ms (0: run now), the same for every job
ARGV[2]  n: how many name/value items each job has
ARGV[3..] per job: its id, then its n items

Returns one entry per job, as enqueue does: 1 when added, else the state of the
job that already holds that id.
]]
--- @include "includes/now.lua"
--- @include "includes/add_job.lua"

local now = now_ms()
local delay = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local replies = {}
local i = 3
while i <= #ARGV do
  local id = ARGV[i]
  replies[#replies + 1] = add_job(KEYS[1] .. id, id, delay, now, ARGV, i + 1, i + n,
    KEYS[2], KEYS[3], KEYS[4])
  i = i + n + 1
end
return replies
