"""A worker's housekeeping, every lease / 4 seconds on its event loop: expired
leases of other (dead) workers go back to ready, jobs waiting for parents
whose end went unreported are checked, and the counts of what its jobs did go
to Redis (tarefa.stats). Its own leases are renewed elsewhere, by a thread
that a busy loop cannot hold up (``lease_keeper.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from ..stats import WorkerStats
from ..store import Store
from .reconnect import REDIS_ERRORS
from .reports import report_lost, resolve_waiting
from .shared import Shared

log = logging.getLogger("tarefa.worker")


async def housekeeping_loop(shared: Shared) -> None:
    """Until the worker ends (``shared.ending``): it never depends on being
    cancelled, which a library may swallow mid-call."""
    while not await shared.wait_ending(shared.config.beat):
        try:
            await housekeeping(shared)
        except REDIS_ERRORS as exc:
            log.warning("housekeeping failed, will retry: %s", exc)
        except Exception:  # never let it die
            log.exception("housekeeping failed")


async def housekeeping(shared: Shared) -> None:
    await recover(shared)
    for queue in shared.config.queues:  # a safety net for ends of parents never reported
        _, lost = await shared.store.check_waiting(queue)
        report_lost(shared, queue, lost)
    await send_stats(shared.store, shared.stats, shared.config.queues)


async def send_stats(store: Store, stats: WorkerStats, queues: Iterable[str]) -> None:
    """Add the counts of what the worker's jobs did since the last beat to each
    queue's totals; kept for the next beat if Redis cannot take them. Every
    queue gets the call, counts or none: it also takes the minute's copy of
    the totals for the charts."""
    unsent = stats.take_unsent()
    try:
        for queue in dict.fromkeys([*queues, *unsent]):
            await store.record_stats(queue, unsent.get(queue, {}))
            unsent.pop(queue, None)
    finally:
        stats.put_back(unsent)


async def recover(shared: Shared) -> None:
    """Move other workers' expired leases back to ready, and fetch them: the
    wake-up the recovery sends may go to a frozen worker's connection. Tell
    the jobs waiting for one that failed by stalls."""
    max_stalls = shared.config.max_stalls
    for queue in shared.config.queues:
        recovery = await shared.store.recover(
            queue, max_stalls=max_stalls,
            settings=shared.config.settings[queue],
        )  # fmt: skip
        report_lost(shared, queue, recovery.lost)
        shared.job_log.recovered(queue, recovery.jobs, max_stalls)
        if recovery.count:
            shared.wake()
        if recovery.ended:
            await resolve_waiting(shared, queue, recovery.ended, [])
