--[[ resume: let workers take jobs from a paused queue again, and wake them.

KEYS     the queue's keys it reads (includes/queue_keys.lua)

Returns 1 when the queue was paused, 0 when it was not.
]]
--- @include "includes/wake.lua"

local was_paused = redis.call('DEL', keys.paused)
if was_paused == 1 then
  wake()
end
return was_paused
