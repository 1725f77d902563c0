"""The least a Redis ACL user needs to run tarefa: its keys and the commands
it sends (producers, workers, the dashboard and the operator's commands).

Scripts count: Redis checks each command a Lua script calls against the
caller's ACL, and a script stopped half-way by a denied command keeps what it
wrote until then. So a user must have every command below, not only those a
program seems to use. The pub/sub channels: none.

Durable enqueues also need WAITAOF (and WAIT, for replicas). It is not in
the base rule because a server older than 7.2 refuses an ACL rule that names
a command it lacks. On a Redis Cluster the client also reads the slot map
(CLUSTER SLOTS) and the commands' key positions (COMMAND).

Not in it either: CONFIG GET and INFO, with which workers, ``tarefa info``
and the dashboard's health check read Redis's maxmemory-policy (store/memory.py).
Refused, they say the policy is unknown; grant ``+info`` to have it checked.
"""

from __future__ import annotations

from .keys import PREFIX

KEY_PATTERN = f"~{PREFIX}:*"

COMMANDS = (
    # connection, clock, scripts
    "ping", "time", "evalsha", "script|load",
    # an idle worker's wait for work, and its end at shutdown; job.result()
    "bzpopmin", "client|id", "client|unblock", "blpop",
    # purge: the queue's keys, found by pattern
    "scan",
    # strings (incrby: the lease counter of tarefa 0.1.0's workers, in a rolling deploy)
    "get", "set", "incr", "incrby", "del", "exists", "pexpire",
    # hashes: jobs, workers, counts
    "hget", "hset", "hsetnx", "hdel", "hmget", "hgetall", "hkeys", "hincrby",
    # lists: ready jobs, lanes, history, done signals
    "lpush", "rpush", "rpop", "llen", "lindex", "lrange", "lrem", "ltrim",
    # sets: the registry of queues and workers
    "sadd", "srem", "smembers",
    # sorted sets: priorities, schedules, leases, results, failures, rate limits
    "zadd", "zrem", "zcard", "zscore", "zrange", "zrevrange", "zrangebyscore",
    "zremrangebyscore", "zpopmin",
)  # fmt: skip
DURABLE_COMMANDS = ("waitaof", "wait")  # enqueues with durable=True (Redis 7.2+; WAIT: replicas)
CLUSTER_COMMANDS = ("cluster|slots", "command")  # a Redis Cluster's client, at start


def acl_rule(user: str, password: str, durable: bool = False, cluster: bool = False) -> str:
    """The ACL rule of a user that may run tarefa, for ``ACL SETUSER`` (after
    the command's name) or an ACL file (after ``user``); ``durable``: with the
    commands of durable enqueues; ``cluster``: with those of a cluster's client."""
    extra = (DURABLE_COMMANDS if durable else ()) + (CLUSTER_COMMANDS if cluster else ())
    commands = " ".join(f"+{c}" for c in COMMANDS + extra)
    return f"{user} on >{password} resetchannels {KEY_PATTERN} -@all {commands}"
