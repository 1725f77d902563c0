--[[ recover: move jobs whose lease expired back to ready (their worker died or
was cut off), counting a stall; fail those that stalled too often. Run by every
worker at start-up and on each heartbeat, so recovery needs no idle worker to
fetch.

KEYS[1]  job key prefix (tarefa:{q}:job:): a job's key is prefix .. id
KEYS[2]  ready list
KEYS[3]  active zset
KEYS[4]  failed zset
KEYS[5]  marker zset
KEYS[6]  done list prefix (tarefa:{q}:done:): + job id -> list job.result() waits on
ARGV[1]  how many jobs at most
ARGV[2]  max stalls before a job fails

Returns how many jobs were recovered.
]]
--- @include "includes/now.lua"
--- @include "includes/recover_expired.lua"

local keys = {
  ready = KEYS[2], active = KEYS[3], failed = KEYS[4], marker = KEYS[5], done_prefix = KEYS[6],
}
return recover_expired(KEYS[1], now_ms(), tonumber(ARGV[1]), tonumber(ARGV[2]), keys)
