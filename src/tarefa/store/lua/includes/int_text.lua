-- A whole number as text. Redis 7.0 writes each number passed to redis.call
-- with %.17g, which costs about as much as a small command: a time sent with
-- every job of a call (now, a lease deadline) goes as text made once.
local function int_text(n)
  return string.format('%d', n)
end
