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

from .heartbeat import leases_by_queue, send_stats
from .reconnect import REDIS_ERRORS, Backoff, retrying

if TYPE_CHECKING:
    from .worker import Running, Worker

log = logging.getLogger("tarefa.worker")

REPORT_FOR = 30.0  # seconds a stopping worker tries to reach Redis with what it holds


async def shutdown(worker: Worker) -> None:
    """Let running jobs finish within the grace period, report every outcome,
    and hand back to ready whatever is still running."""
    await worker.idle.end()
    if worker.running and not worker.stop_now:
        deadline = time.monotonic() + worker.grace
        while worker.running and not worker.stop_now and time.monotonic() < deadline:
            worker.changed.clear()
            if worker.pending():  # report now: an unreported job's lease runs out
                await flush_outcomes(worker)
            await worker.sleep(deadline - time.monotonic())
    leftover = list(worker.running.values())
    worker.running.clear()
    await cancel_and_wait([r.task for r in leftover])
    if leftover:
        await retrying(hand_back, worker, leftover, give_up_after=REPORT_FOR)
    await flush_outcomes(worker)
    try:
        await send_stats(worker)
    except REDIS_ERRORS as exc:
        log.warning("could not send the last counts of jobs: %s", exc)


async def cancel_and_wait(tasks: list[asyncio.Task | None]) -> None:
    """Cancel the tasks and wait until each has ended. Once is not always
    enough: on Python 3.11, asyncio.wait_for (which redis.asyncio puts around
    every send) returns the result of a call that completes as the
    cancellation lands and drops the cancellation, so the task goes on (a
    heartbeat to its next beat, a job to its next await). It is cancelled
    again until it ends."""
    while pending := [t for t in tasks if t is not None and not t.done()]:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=0.1)
    for task in tasks:  # retrieved, so that asyncio does not log them as never seen
        if task is not None and not task.cancelled():
            task.exception()


async def hand_back(worker: Worker, jobs: list[Running]) -> None:
    """Put leased jobs back to ready, their attempt not counted."""
    for queue, leases in leases_by_queue(jobs).items():
        count = await worker.store.requeue(queue, leases)
        log.info("queue %s: handed back %s jobs", queue, count)


async def flush_outcomes(worker: Worker) -> None:
    """Report the outcomes still held, retrying for up to ``REPORT_FOR`` s."""
    deadline = time.monotonic() + REPORT_FOR
    backoff = Backoff()
    while worker.pending():
        try:
            await worker.exchange(lease=False)
        except REDIS_ERRORS as exc:
            if time.monotonic() > deadline:
                lost = sum(map(len, worker.outcomes.values()))
                log.error("could not report %d outcomes: Redis unreachable", lost)
                return
            await asyncio.sleep(backoff.next(exc))
