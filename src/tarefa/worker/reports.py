"""What any part of the worker tells Redis, or the log, about jobs beyond
their outcomes: jobs found gone, the ends of jobs others wait for, and leased
jobs handed back unrun."""

from __future__ import annotations

import logging

from ..records import AttemptOutcome
from ..store import job_ref
from .reconnect import REDIS_ERRORS
from .running import Running, leases_by_queue
from .shared import Shared

log = logging.getLogger("tarefa.worker")

REPORT_FOR = 30.0  # seconds a running worker tries to hand back jobs it cannot run


def report_lost(shared: Shared, queue: str, job_ids: list[str]) -> None:
    """Jobs found gone: their id was in the queue, their data no longer in
    Redis. Counted by the store (the queue's "lost" count); each said here."""
    policy = shared.memory_policy
    why = (
        f"evicted by Redis: its maxmemory-policy is {policy}"
        if policy not in (None, "noeviction")
        else "evicted by Redis, or deleted by hand"
    )
    for job_id in job_ids:
        log.error(
            "job %s of queue %s lost: its id was in the queue but its data is gone from "
            "Redis (%s); it cannot run",
            job_id, queue, why,
        )  # fmt: skip


async def resolve_waiting(
    shared: Shared,
    queue: str,
    ended: list[tuple[str, str, list[str]]],
    sent: list[AttemptOutcome],
) -> None:
    """Tell the jobs waiting for the ones that just ended (chains, groups);
    ``sent``: the outcomes just reported (the results of completed ones).
    If Redis fails here, the periodic check of waiting jobs tells them."""
    results = {a.job_id: a.outcome.value for a in sent if a.completed}
    for job_id, outcome, children in ended:
        parent = job_ref(queue, job_id)
        try:
            await shared.store.aresolve(parent, outcome, results.get(job_id, b""), children)
        except REDIS_ERRORS as exc:
            log.warning("job %s: could not tell the jobs waiting for it yet: %s", job_id, exc)


async def hand_back(shared: Shared, jobs: list[Running], why: str | None = None) -> None:
    """Put leased jobs back to ready, their attempt not counted; ``why``: the
    worker is stopping (None: they were leased beyond its free slots)."""
    for queue, leases in leases_by_queue(jobs).items():
        count = await shared.store.requeue(queue, leases)
        shared.job_log.handed_back([r for r in jobs if r.queue == queue], count, why)
