--[[ beat_worker: a live worker's beat: keep its registration (the hash that
`tarefa info` lists) from expiring, and say how many jobs it runs. Not a
queue's script: its one key is the worker's own.

KEYS[1]  the worker's hash (worker_key, in store/keys)
ARGV[1]  ms until the hash expires unless the worker beats again
ARGV[2]  how many jobs the worker runs now
ARGV[3]  now, in ms on the worker's clock (shown, never compared)

Returns 1; 0 when the hash is gone (it expired while Redis was out of reach,
or a full Redis refused it at the start): the caller registers the worker
again.
]]

-- PEXPIRE first: a write that needs no memory. A full Redis (maxmemory,
-- noeviction) refuses a script at its first command that may need memory
-- unless a write came before it, so this beat goes on while workers drain a
-- full Redis, and the registration does not expire under them.
if redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'running', ARGV[2], 'beat_at', ARGV[3])
return 1
