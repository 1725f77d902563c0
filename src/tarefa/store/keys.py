"""Every Redis key name tarefa uses, and nothing else.

All keys of one queue carry the queue's hash tag (``tarefa:{emails}:...``) so a
queue lives in one Redis Cluster slot and its Lua scripts stay atomic there.
Only the registry of queues and workers lives outside any queue's slot, and no
script touches those together with a queue's keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

PREFIX = "tarefa"

# Registry keys (global, outside every queue's slot).
QUEUES = f"{PREFIX}:queues"  # set of queue names ever used
WORKERS = f"{PREFIX}:workers"  # set of worker ids (each one's hash expires with it)

_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.:\-]{1,100}$")


def check_queue_name(name: object) -> str:
    if not isinstance(name, str) or not _QUEUE_NAME.fullmatch(name):
        raise ValueError(
            f"invalid queue name {name!r}: use 1-100 letters, digits, '_', '.', ':' or '-'"
        )
    return name


def worker_key(worker_id: str) -> str:
    """Hash describing one live worker (host, pid, queues, ...); expires with it."""
    return f"{PREFIX}:worker:{worker_id}"


@dataclass(frozen=True, slots=True)
class QueueKeys:
    """The keys of one queue. A script that touches a queue gets in KEYS the
    ones it reads, in field order, and reads them by name from the ``keys``
    table that ``includes/queue_keys.lua`` builds (store/scripts.py); scripts
    never make key names of their own beyond appending an id to a prefix."""

    name: str
    job_prefix: str  # + job id -> hash with the job's fields
    done_prefix: str  # + job id -> list a finishing job pushes to, for job.result()
    cron_prefix: str  # + task name -> the latest tick it was scheduled for
    cron_run_prefix: str  # + task name -> the tick whose job is its latest run
    ready: str  # list of ids ready to run (LPUSH in, RPOP out: FIFO)
    prioritized: str  # zset of ready ids with a priority: score = priority, then arrival
    priority_seq: str  # counter of arrivals (FIFO within a priority, turns of lanes)
    # tarefa 0.1.0's lease counter: its fetch.lua counts tokens there (store/tokens.py
    # draws them instead); its workers use it during a rolling deploy, so purge keeps it.
    lease_seq: str
    scheduled: str  # zset id -> due time (ms): retry back-off, delays
    active: str  # zset id -> lease deadline (ms)
    completed: str  # zset id -> expiry time of the kept result (ms)
    failed: str  # zset id -> finish time (ms): the dead-letter set
    marker: str  # zset idle workers block on (BZPOPMIN): "something changed"
    paused: str  # set while the queue is paused: workers lease nothing from it
    lane_prefix: str  # + job key -> list of that key's ready ids (FIFO)
    lanes: str  # zset of keys whose lane may run now, in turn (score: arrival)
    lanes_waiting: str  # zset key -> when its rate limit lets it run again (ms)
    lane_active: str  # hash key -> how many of its jobs are active
    lane_rate_prefix: str  # + job key -> zset of its recent starts (rate limit)
    rate: str  # zset of the queue's recent starts (rate limit)
    dedupe_prefix: str  # + task and key -> id of the job a throttle/debounce keeps
    waiting: str  # zset id -> when to check its parents again (ms): jobs waiting for jobs
    dependents_prefix: str  # + job id -> list of "queue|id" of the jobs waiting for it
    stats: str  # hash "event|task" -> count since the queue began (tarefa.stats)
    history: str  # list of the stats' sums, one a minute, newest first (record_stats.lua)

    def job(self, job_id: str) -> str:
        return self.job_prefix + job_id

    def cron_mark(self, task: str) -> str:
        return self.cron_prefix + task

    def cron_run(self, task: str) -> str:
        return self.cron_run_prefix + task

    def done_signal(self, job_id: str) -> str:
        return self.done_prefix + job_id

    def dependents(self, job_id: str) -> str:
        return self.dependents_prefix + job_id

    def lane(self, key: str) -> str:
        return self.lane_prefix + key


# The keys a script may read, in the order they come in its KEYS.
SCRIPT_KEY_NAMES = tuple(f for f in QueueKeys.__dataclass_fields__ if f != "name")


@lru_cache(maxsize=1024)
def queue_keys(queue: str) -> QueueKeys:
    base = f"{PREFIX}:{{{check_queue_name(queue)}}}:"
    names = {
        # job_prefix -> tarefa:{q}:job:, ready -> tarefa:{q}:ready
        name: base + (name.removesuffix("_prefix") + ":" if name.endswith("_prefix") else name)
        for name in SCRIPT_KEY_NAMES
    }
    return QueueKeys(name=queue, **names)


def job_ref(queue: str, job_id: str) -> str:
    """A job named across queues, as scripts store it: ``queue|id`` (queue names
    have no ``|``)."""
    return f"{queue}|{job_id}"


def split_ref(ref: str) -> tuple[str, str]:
    queue, _, job_id = ref.partition("|")
    return queue, job_id
