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
    """The keys of one queue. Scripts get these in KEYS, never build them."""

    name: str
    job_prefix: str  # + job id -> hash with the job's fields
    done_prefix: str  # + job id -> list a finishing job pushes to, for job.result()
    cron_prefix: str  # + task name -> the latest tick it was scheduled for
    cron_run_prefix: str  # + task name -> the tick whose job is its latest run
    ready: str  # list of ids ready to run (LPUSH in, RPOP out: FIFO)
    prioritized: str  # zset of ready ids with a priority: score = priority, then arrival
    priority_seq: str  # counter of prioritized arrivals (FIFO within a priority)
    scheduled: str  # zset id -> due time (ms): retry back-off, delays
    active: str  # zset id -> lease deadline (ms)
    completed: str  # zset id -> expiry time of the kept result (ms)
    failed: str  # zset id -> finish time (ms): the dead-letter set
    marker: str  # zset idle workers block on (BZPOPMIN): "something changed"
    paused: str  # set while the queue is paused: workers lease nothing from it

    def job(self, job_id: str) -> str:
        return self.job_prefix + job_id

    def cron_mark(self, task: str) -> str:
        return self.cron_prefix + task

    def cron_run(self, task: str) -> str:
        return self.cron_run_prefix + task

    def done_signal(self, job_id: str) -> str:
        return self.done_prefix + job_id


@lru_cache(maxsize=1024)
def queue_keys(queue: str) -> QueueKeys:
    base = f"{PREFIX}:{{{check_queue_name(queue)}}}:"
    return QueueKeys(
        name=queue,
        job_prefix=base + "job:",
        done_prefix=base + "done:",
        cron_prefix=base + "cron:",
        cron_run_prefix=base + "cron_run:",
        ready=base + "ready",
        prioritized=base + "prioritized",
        priority_seq=base + "priority_seq",
        scheduled=base + "scheduled",
        active=base + "active",
        completed=base + "completed",
        failed=base + "failed",
        marker=base + "marker",
        paused=base + "paused",
    )
