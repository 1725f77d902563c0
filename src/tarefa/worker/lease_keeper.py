"""The lease keeper: a thread that keeps the worker's leases alive and watches
its event loop.

Every lease / 4 seconds it renews the leases of every job the worker runs
(one call per queue) and the worker's own registration. It runs in a thread
of its own, with its own connection, so a leased job stays leased while the
process lives, even while an ``async def`` job that calls blocking code holds
the event loop: the lease then says the truth (the job is running, here), and
no other worker takes it over to run it a second time. A lease the worker no
longer holds (the job was cancelled, deleted, or taken over after the lease
ran out) is reported to the loop, which stops that attempt.

Each round it also asks the loop to answer (``call_soon_threadsafe``). A loop
that has not answered for ``BLOCKED_AFTER`` seconds is blocked: the keeper
logs which job holds it and for how long. A job that holds it past its
timeout plus two leases cannot be stopped from here (Python cannot interrupt
the loop), so the keeper ends the attempt the way a timeout would (retried
per the task's ``retries``, else failed), hands the worker's other jobs back,
and ends the process: a worker whose loop never comes back is worth less than
a fresh one from the process supervisor.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable

from ..records import LeaseLoss
from .execution import job_timeout, timed_out
from .reconnect import REDIS_ERRORS
from .running import Lease, Running, leases_by_queue
from .shared import Shared
from .waits import wait_set

log = logging.getLogger("tarefa.worker")

BLOCKED_AFTER = 1.0  # seconds without an answer from the loop before it counts as blocked
BLOCKED_EXIT = 3  # the exit code of a worker whose loop a job held past its timeout


class LeaseKeeper(threading.Thread):
    """Runs an event loop of its own, in its own thread, for the calls above."""

    def __init__(
        self, shared: Shared, stop_lost: Callable[[str, dict[Lease, LeaseLoss]], None]
    ) -> None:
        super().__init__(name="tarefa-lease-keeper", daemon=True)
        self.shared = shared
        self.loop = shared.loop  # the worker's loop, the one watched
        self.stop_lost = stop_lost  # called on the worker's loop with (queue, lost leases)
        self._own_loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._started = threading.Event()
        self._blocked_by: Running | None = None  # the job holding the loop, once reported

    def start(self) -> None:
        super().start()
        self._started.wait()

    def stop(self, timeout: float) -> None:
        """End the thread, within ``timeout`` seconds (a renewal under way ends
        first; each call to Redis is bounded by its reply timeout)."""
        own_loop, stopping = self._own_loop, self._stopping
        if own_loop is not None and stopping is not None and not own_loop.is_closed():
            try:
                own_loop.call_soon_threadsafe(stopping.set)
            except RuntimeError:  # closed meanwhile
                pass
        if threading.current_thread() is not self:
            self.join(timeout)

    def run(self) -> None:
        asyncio.run(self._keep())

    async def _keep(self) -> None:
        self._stopping = stopping = asyncio.Event()
        self._own_loop = asyncio.get_running_loop()
        self._started.set()
        try:
            while not await wait_set(stopping, self.shared.config.beat):
                try:
                    await self.watch_loop()
                    await self.renew()
                except REDIS_ERRORS as exc:
                    log.warning("renewing leases failed, will retry: %s", exc)
                except Exception:  # never let the keeper die
                    log.exception("renewing leases failed")
        finally:
            await self.shared.store.aclose()

    async def renew(self) -> None:
        shared, config = self.shared, self.shared.config
        running = list(shared.running.values())  # one step under the GIL
        for queue, leases in leases_by_queue(running).items():
            lost = await shared.store.heartbeat(queue, config.lease_ms, leases)
            if lost:
                why = {(loss.job_id, loss.token): loss.reason for loss in lost}
                self.loop.call_soon_threadsafe(self.stop_lost, queue, why)
        await shared.store.beat_worker(config.id, config.lease_ms, len(running))
        shared.health.beat_at = time.monotonic()

    # -- the event loop's health --------------------------------------------------

    async def watch_loop(self) -> None:
        now, health = time.monotonic(), self.shared.health
        if health.asked_at is None:
            health.asked_at = now
            try:
                self.loop.call_soon_threadsafe(self._answered)
            except RuntimeError:  # the worker's loop is closed: it has ended
                if self._stopping is not None:
                    self._stopping.set()
            return
        blocked = now - health.asked_at
        if blocked < BLOCKED_AFTER:
            return
        running = self._holding_the_loop()
        if running is None:
            return
        if running is not self._blocked_by:
            self._blocked_by = running
            log.warning(
                "job %s (%s) has held the event loop for %.1f s: no other job of this worker "
                "runs meanwhile. An async task must not call blocking code: await "
                "asyncio.to_thread(...) for it, or make the task a plain def (it runs in a "
                "thread)", running.job.id, running.job.task, blocked,
            )  # fmt: skip
        timeout = job_timeout(self.shared.app, running.job)
        if timeout is not None and blocked > timeout + 2 * self.shared.config.lease_ms / 1000:
            await self.give_up(running, blocked, timeout)

    def _answered(self) -> None:
        """Runs on the worker's loop: it is free again."""
        health = self.shared.health
        asked_at, health.asked_at = health.asked_at, None
        if self._blocked_by is not None and asked_at is not None:
            held = time.monotonic() - asked_at
            job = self._blocked_by.job
            log.warning("job %s (%s) held the event loop for %.1f s", job.id, job.task, held)
            self._blocked_by = None

    def _holding_the_loop(self) -> Running | None:
        """The job whose code the worker's loop runs now, if it is a job's."""
        task = asyncio.current_task(self.loop)  # from this thread: a dict lookup
        return next((r for r in list(self.shared.running.values()) if r.task is task), None)

    async def give_up(self, running: Running, blocked: float, timeout: float) -> None:
        """The loop is held past the job's timeout: end its attempt as a timeout,
        hand back the other jobs, leave the process."""
        shared, config, job = self.shared, self.shared.config, running.job
        message = (
            f"{job.task} held the worker's event loop for {blocked:.1f} s, past its timeout "
            f"of {timeout:g} s (an async task calling blocking code); its worker exited"
        )
        log.critical("job %s: %s", job.id, message)
        others = [r for r in list(shared.running.values()) if r is not running]
        try:
            outcome = timed_out(shared.app, job, message).of(job.id, job.token)
            await shared.store.fetch(
                running.queue, config.id, want=0, lease_ms=config.lease_ms,
                max_stalls=config.max_stalls, settings=config.settings[running.queue],
                outcomes=[outcome],
            )  # fmt: skip
            for queue, leases in leases_by_queue(others).items():
                await shared.store.requeue(queue, leases)
            await shared.store.unregister_worker(config.id)
        except REDIS_ERRORS as exc:
            log.error("could not report it (%s): its lease runs out and it is recovered", exc)
        logging.shutdown()
        os._exit(BLOCKED_EXIT)
