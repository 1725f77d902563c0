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

from .exchange import Exchange
from .housekeeping import send_stats
from .idle import IdleWait
from .reconnect import REDIS_ERRORS, Backoff, retrying
from .reports import hand_back
from .shared import Shared
from .waits import settle

log = logging.getLogger("tarefa.worker")

AFTER_GRACE = 5.0  # seconds a stopping worker spends, after the grace, handing back and reporting
AFTER_STOP_NOW = 2.0  # the same, once told to stop now (a second SIGTERM)


async def shutdown(shared: Shared, idle: IdleWait, exchange: Exchange) -> None:
    """Let running jobs finish within the grace period, report every outcome,
    and hand back to ready whatever is still running: within the grace period
    plus ``AFTER_GRACE`` seconds (``AFTER_STOP_NOW`` once told to stop now),
    even if Redis is away (unreported outcomes then come back as stalls:
    their leases run out, nothing is lost)."""
    await idle.end()
    grace_ends = time.monotonic() + shared.config.grace
    while shared.running and not shared.stop.now and time.monotonic() < grace_ends:
        shared.changed.clear()
        if shared.outcomes.pending():  # report now: an unreported job's lease runs out
            await flush_outcomes(shared, exchange, grace_ends)
        await shared.sleep(grace_ends - time.monotonic())
    deadline = time.monotonic() + (AFTER_STOP_NOW if shared.stop.now else AFTER_GRACE)
    leftover = list(shared.running.values())
    shared.running.clear()
    tasks = [r.task for r in leftover if r.task is not None]
    for task in tasks:
        task.cancel()
    # A job may swallow its cancellation: it is handed back all the same.
    await settle(tasks, max(0.1, deadline - time.monotonic()))
    if leftover:
        why = "the worker stopped before it ended"
        await retrying(hand_back, shared, leftover, why, give_up_after=deadline - time.monotonic())
    await flush_outcomes(shared, exchange, deadline)
    try:
        await send_stats(shared.store, shared.stats, shared.config.queues)
    except REDIS_ERRORS as exc:
        log.warning("could not send the last counts of jobs: %s", exc)


async def flush_outcomes(shared: Shared, exchange: Exchange, deadline: float) -> None:
    """Report the outcomes still held, retrying until ``deadline`` (monotonic)."""
    backoff = Backoff()
    while shared.outcomes.pending():
        try:
            await exchange.exchange(lease=False)
        except REDIS_ERRORS as exc:
            if time.monotonic() > deadline:
                log.error(
                    "could not report %d outcomes: Redis unreachable; their leases run out "
                    "and they are run again", shared.outcomes.count(),
                )  # fmt: skip
                return
            await asyncio.sleep(min(backoff.next(exc), max(0.0, deadline - time.monotonic())))
