"""A worker's end: running jobs get the grace period, every outcome is
reported, and what still runs is handed back to ready for another worker.

SIGTERM (or ``Worker.stop()``) starts it; a second one, or ``stop(now=True)``,
cuts the grace period short. A job handed back keeps its attempt count: it
was not its fault that the worker stopped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from .housekeeping import leases_by_queue, send_stats
from .reconnect import REDIS_ERRORS, Backoff, retrying
from .waits import settle

if TYPE_CHECKING:
    from .worker import Running, Worker

log = logging.getLogger("tarefa.worker")

REPORT_FOR = 30.0  # seconds a running worker tries to hand back jobs it cannot run
AFTER_GRACE = 5.0  # seconds a stopping worker spends, after the grace, handing back and reporting
AFTER_STOP_NOW = 2.0  # the same, once told to stop now (a second SIGTERM)


async def shutdown(worker: Worker) -> None:
    """Let running jobs finish within the grace period, report every outcome,
    and hand back to ready whatever is still running: within the grace period
    plus ``AFTER_GRACE`` seconds (``AFTER_STOP_NOW`` once told to stop now),
    even if Redis is away (unreported outcomes then come back as stalls:
    their leases run out, nothing is lost)."""
    await worker.idle.end()
    grace_ends = time.monotonic() + worker.grace
    while worker.running and not worker.stop_now and time.monotonic() < grace_ends:
        worker.changed.clear()
        if worker.pending():  # report now: an unreported job's lease runs out
            await flush_outcomes(worker, grace_ends)
        await worker.sleep(grace_ends - time.monotonic())
    deadline = time.monotonic() + (AFTER_STOP_NOW if worker.stop_now else AFTER_GRACE)
    leftover = list(worker.running.values())
    worker.running.clear()
    for running in leftover:
        running.task.cancel()
    # A job may swallow its cancellation: it is handed back all the same.
    await settle([r.task for r in leftover], max(0.1, deadline - time.monotonic()))
    if leftover:
        why = "the worker stopped before it ended"
        await retrying(hand_back, worker, leftover, why, give_up_after=deadline - time.monotonic())
    await flush_outcomes(worker, deadline)
    try:
        await send_stats(worker)
    except REDIS_ERRORS as exc:
        log.warning("could not send the last counts of jobs: %s", exc)


async def hand_back(worker: Worker, jobs: list[Running], why: str | None = None) -> None:
    """Put leased jobs back to ready, their attempt not counted; ``why``: the
    worker is stopping (None: they were leased beyond its free slots)."""
    for queue, leases in leases_by_queue(jobs).items():
        count = await worker.store.requeue(queue, leases)
        worker.job_log.handed_back([r for r in jobs if r.queue == queue], count, why)


async def flush_outcomes(worker: Worker, deadline: float) -> None:
    """Report the outcomes still held, retrying until ``deadline`` (monotonic)."""
    backoff = Backoff()
    while worker.pending():
        try:
            await worker.exchange(lease=False)
        except REDIS_ERRORS as exc:
            if time.monotonic() > deadline:
                lost = sum(map(len, worker.outcomes.values()))
                log.error(
                    "could not report %d outcomes: Redis unreachable; their leases run out "
                    "and they are run again", lost,
                )  # fmt: skip
                return
            await asyncio.sleep(min(backoff.next(exc), max(0.0, deadline - time.monotonic())))
