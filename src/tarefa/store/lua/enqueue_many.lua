--[[ enqueue_many: add a batch of jobs to one queue in one call.

KEYS     the queue's keys it reads (includes/queue_keys.lua)
ARGV[1]  delay in ms (0: run now), the same for every job
ARGV[2]  priority (0: none), the same for every job
ARGV[3]  key ('' none), the same for every job
ARGV[4]  how many jobs each waits for (0: none; see resolve.lua)
ARGV[5]  '1': a durable enqueue (see enqueue.lua's ARGV[9]), else '0'
ARGV[6]  n: how many name/value items each job has
ARGV[7..] per job: its id, then its n items

Returns one entry per job, as enqueue does: 1 when added, else the state of the
job that already holds that id.
]]
--- @include "includes/now.lua"
--- @include "includes/add_job.lua"

local now = now_ms()
local how = { delay = tonumber(ARGV[1]), priority = tonumber(ARGV[2]), key = ARGV[3],
  waits = tonumber(ARGV[4]), durable = ARGV[5] == '1', counted_by_caller = true }
local n = tonumber(ARGV[6])
local replies, added = {}, {} -- added: task name -> jobs added
local i = 7
while i <= #ARGV do
  local reply = add_job(ARGV[i], how, now, ARGV, i + 1, i + n)
  if reply == 1 then
    local task = ARGV[i + 2] -- the job's first item is 'task', then its name
    added[task] = (added[task] or 0) + 1
  end
  replies[#replies + 1] = reply
  i = i + n + 1
end
for task, count in pairs(added) do
  redis.call('HINCRBY', keys.stats, 'enqueued|' .. task, count) -- see tarefa.stats
end
return replies
