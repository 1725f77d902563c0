"""A worker's housekeeping, every lease / 4 seconds on its event loop: expired
leases of other (dead) workers go back to ready, jobs waiting for parents
whose end went unreported are checked, and the counts of what its jobs did go
to Redis (tarefa.stats). Its own leases are renewed elsewhere, by a thread
that a busy loop cannot hold up (``lease_keeper.py``); this module also holds
what that thread reports to the loop: the attempts whose lease was lost.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..store import LeaseLoss
from .reconnect import REDIS_ERRORS

if TYPE_CHECKING:
    from .worker import Running, Worker

log = logging.getLogger("tarefa.worker")


async def housekeeping_loop(worker: Worker) -> None:
    """Until the worker ends (``worker.ending``): it never depends on being
    cancelled, which a library may swallow mid-call."""
    interval = worker.lease_ms / 4000
    while not await worker.wait_ending(interval):
        try:
            await housekeeping(worker)
        except REDIS_ERRORS as exc:
            log.warning("housekeeping failed, will retry: %s", exc)
        except Exception:  # never let it die
            log.exception("housekeeping failed")


async def housekeeping(worker: Worker) -> None:
    await recover(worker)
    for queue in worker.queues:  # a safety net for ends of parents never reported
        _, lost = await worker.store.check_waiting(queue)
        worker.report_lost(queue, lost)
    await send_stats(worker)


async def send_stats(worker: Worker) -> None:
    """Add the counts of what the worker's jobs did since the last beat to each
    queue's totals; kept for the next beat if Redis cannot take them. Every
    queue gets the call, counts or none: it also takes the minute's copy of
    the totals for the charts."""
    unsent = worker.stats.take_unsent()
    try:
        for queue in dict.fromkeys([*worker.queues, *unsent]):
            await worker.store.record_stats(queue, unsent.get(queue, {}))
            unsent.pop(queue, None)
    finally:
        worker.stats.put_back(unsent)


def stop_lost(worker: Worker, queue: str, lost: dict[tuple[str, bytes], LeaseLoss]) -> None:
    """Stop the attempts (job id, lease token: why) whose lease this worker
    lost: an async job is cancelled, a process-pool job's process is killed, a
    sync one in a thread sees ``current_job().cancelled``."""
    for running in list(worker.running.values()):
        why = lost.get((running.job.id, running.job.token)) if running.queue == queue else None
        if why is not None:
            worker.job_log.lease_lost(running, why)
            running.cancel.set()
            task = worker.app.tasks.get(running.job.task)
            if task is not None and (task.is_async or worker.processes.runs(task)):
                running.task.cancel()


async def recover(worker: Worker) -> None:
    """Move other workers' expired leases back to ready, and fetch them: the
    wake-up the recovery sends may go to a frozen worker's connection. Tell
    the jobs waiting for one that failed by stalls."""
    for queue in worker.queues:
        recovery = await worker.store.recover(
            queue, max_stalls=worker.max_stalls,
            dead_letters=worker.app.settings(queue).dead_letter_args(),
        )  # fmt: skip
        worker.report_lost(queue, recovery.lost)
        worker.job_log.recovered(queue, recovery.jobs, worker.max_stalls)
        if recovery.count:
            worker.wake()
        if recovery.ended:
            await worker.resolve_waiting(queue, recovery.ended, [])


def leases_by_queue(jobs: Iterable[Running]) -> dict[str, list[tuple[str, bytes]]]:
    """(job id, lease token) pairs grouped by queue: one script call per queue."""
    by_queue: dict[str, list[tuple[str, bytes]]] = defaultdict(list)
    for running in list(jobs):
        by_queue[running.queue].append((running.job.id, running.job.token))
    return by_queue
