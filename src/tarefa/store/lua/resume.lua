--[[ resume: let workers take jobs from a paused queue again, and wake them.

KEYS[1]  the queue's paused flag
KEYS[2]  marker zset

Returns 1 when the queue was paused, 0 when it was not.
]]
--- @include "includes/wake.lua"

local was_paused = redis.call('DEL', KEYS[1])
if was_paused == 1 then
  wake(KEYS[2])
end
return was_paused
