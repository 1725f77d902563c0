"""How an idle worker waits for work.

With nothing to do, the worker sleeps until one of its jobs ends, a scheduled
job falls due (each fetch reply says when), or a producer enqueues. That last
wake-up comes from Redis: on a connection of its own, the worker blocks on the
queues' markers (BZPOPMIN) with a fetch of one job pipelined behind it, which
Redis runs as soon as the pop returns. So an idle worker costs nothing, and
starts a new job one round trip after the enqueue. At shutdown the wait is
ended at once (CLIENT UNBLOCK), and whatever it leased is handed back.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .jobs import Jobs
from .reconnect import REDIS_ERRORS
from .reports import report_lost
from .shared import Shared

log = logging.getLogger("tarefa.worker")

IDLE_CHECK = 5.0  # longest sleep when idle (seconds), a safety net for lost wake-ups


class IdleWait:
    """The worker's sleep when there is nothing to do, and the blocking wait
    for work that can end it."""

    def __init__(self, shared: Shared, jobs: Jobs):
        self.shared = shared
        self.jobs = jobs  # where what it leases starts
        self.connection = shared.store.blocking_connection()  # the blocking wait's own
        self.watch: asyncio.Task[None] | None = None  # the blocking wait, when one runs
        self._blocked = False  # the wait's pipeline is out, its reply not yet in

    async def sleep(self, next_due_ms: int) -> None:
        """Sleep until a job ends, new work is signalled, or a job falls due."""
        if self.watch is not None and self.watch.done():
            self.watch = None
            return  # a wake-up came while the loop was busy: look again first
        timeout = IDLE_CHECK if next_due_ms < 0 else min(IDLE_CHECK, next_due_ms / 1000)
        waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(self.shared.changed.wait())]
        if self.jobs.free_slots() > 0:
            if self.watch is None:
                self.watch = asyncio.create_task(self._wait_for_work())
            waiters.append(self.watch)
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        waiters[0].cancel()

    async def _wait_for_work(self) -> None:
        """Block on the queues' markers; the job leased in the same round trip
        starts here (or goes back if the slots filled up meanwhile), and the
        exchange loop, woken as this returns, fetches the rest.

        One job, not a batch: a frozen or cut-off worker's connection stays
        blocked in Redis, and the fetch queued behind it runs when a wake-up
        comes; the job it leases waits out one lease before it is recovered.
        """
        shared, config = self.shared, self.shared.config
        try:
            self._blocked = True
            fetched, errors = await shared.store.wait_then_fetch(
                self.connection, config.queues, IDLE_CHECK, config.id,
                want=1, lease_ms=config.lease_ms, max_stalls=config.max_stalls,
                settings=config.settings.__getitem__,
            )  # fmt: skip
        except REDIS_ERRORS as exc:
            self._blocked = False
            log.debug("waiting for work: %s", exc)
            await asyncio.sleep(0.5)  # the exchange loop reports the outage
            return
        except Exception:
            self._blocked = False
            log.exception("waiting for work failed")
            await asyncio.sleep(1.0)
            return
        self._blocked = False
        for error in errors:
            log.warning("fetch after waiting for work failed: %r", error)
        for queue, got in fetched:
            report_lost(shared, queue, got.lost)
            await self.jobs.take(queue, got.jobs)

    async def close(self) -> None:
        await self.connection.aclose()

    async def end(self) -> None:
        """End a pending blocking wait now (CLIENT UNBLOCK): whatever it leased
        is handed back rather than left to expire."""
        if self.watch is None or self.watch.done():
            return
        try:
            await self.shared.store.unblock(self.connection)
            await asyncio.wait_for(asyncio.shield(self.watch), 2.0)
        except (TimeoutError, *REDIS_ERRORS):
            if self._blocked:
                self.watch.cancel()  # still blocked in Redis: it leased nothing
            else:
                await self.watch  # it is handing back what it leased: let it
