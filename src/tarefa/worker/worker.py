"""The worker: leases jobs, runs them, reports their outcomes, renews leases.

One asyncio loop per process. ``Worker`` checks its settings, then, in
``run()``, builds what its parts share (``shared.py``: settings, running
jobs, outcomes, the stop request, the events every loop watches) and starts
them, each given that and nothing else:

- the slots (``jobs.py``): which leased jobs start, each job's run
  (``execution.py``) to its outcome;
- the exchange loop (``exchange.py``): one script call per queue that reports
  outcomes and leases up to as many new jobs as there are free slots; with
  nothing to do it sleeps (``idle.py``: blocked on Redis, on its own
  connection, so an idle worker wakes within a round trip of an enqueue);
- housekeeping (``housekeeping.py``): other workers' expired leases back to
  ready, the counts of what the jobs did;
- cron (``scheduler.py``, not in burst mode);
- the lease keeper (``lease_keeper.py``): a thread that renews the leases, so
  an async job that blocks the loop does not lose them.

Start-up is ``startup.py``; stopping (SIGTERM, ``stop()``) is ``shutdown.py``.
No step of it depends on a cancellation getting through: every background
loop ends on ``shared.ending``, and every wait at the end is bounded
(``waits.py``).

Redis errors never stop the worker: running jobs go on, outcomes wait in
memory, and every call is retried with back-off until Redis answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import uuid
from collections.abc import Sequence
from typing import Any

from ..app import App
from ..stats import WorkerStats
from ..store import check_queue_name
from .exchange import Exchange
from .housekeeping import housekeeping_loop
from .idle import IdleWait
from .job_log import JobLog
from .jobs import Jobs
from .lease_keeper import LeaseKeeper
from .memory import parse_size
from .process_pool import ProcessPool
from .running import Lease, Running
from .scheduler import cron_loop
from .shared import Shared, StopRequest, WorkerConfig
from .shutdown import shutdown
from .startup import connect, log_start
from .waits import settle

log = logging.getLogger("tarefa.worker")


class Worker:
    """Runs the jobs of ``queues`` (listed first, served first).

    ``pool``: where sync tasks that name no pool of their own run: ``"thread"``
    or ``"process"`` (a task's ``@app.task(pool=...)`` wins). ``app_path``: the
    app's ``package.module:attribute``, for child processes to import; found by
    itself when the app is bound to a module-level name. ``max_memory``: bytes
    (or a size: ``"512M"``, ``"2G"``) of resident memory each process-pool job
    may use; its process is killed past it and the attempt fails with
    ``WorkerProcessDied``. Thread-pool and async jobs share the worker's own
    memory: no limit applies to them. ``verbose``: log a line (INFO) as each
    attempt starts and ends; failures, retries and lost leases are logged
    either way (``job_log.py``). ``max_jobs``: start at most this many jobs,
    then, once they have ended, stop as on SIGTERM (``retired`` is then true):
    a process that runs leaky code is replaced before it grows, as ``tarefa
    worker --max-jobs-per-process`` does.
    """

    def __init__(
        self,
        app: App,
        queues: Sequence[str] = ("default",),
        *,
        concurrency: int = 10,
        burst: bool = False,
        lease: float = 20.0,
        max_stalls: int = 3,
        grace: float = 30.0,
        name: str | None = None,
        pool: str = "thread",
        app_path: str | None = None,
        max_memory: int | str | None = None,
        verbose: bool = False,
        max_jobs: int | None = None,
    ) -> None:
        if isinstance(queues, str):
            queues = [queues]
        if not queues:
            raise ValueError("a worker needs at least one queue")
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be an int >= 1, not {concurrency!r}")
        if max_jobs is not None and (not isinstance(max_jobs, int) or max_jobs < 1):
            raise ValueError(f"max_jobs must be an int >= 1 or None, not {max_jobs!r}")
        if lease < 0.1:
            raise ValueError(f"lease must be at least 0.1 s, not {lease!r}")
        if max_memory is not None:
            max_memory = parse_size(max_memory)
        self.processes = ProcessPool(
            app, default=pool, app_path=app_path, max_memory=max_memory
        )  # checks them
        self.app = app
        self.queues = [check_queue_name(q) for q in dict.fromkeys(queues)]
        self.concurrency = concurrency
        self.burst = burst
        self.lease_ms = int(lease * 1000)
        self.max_stalls = max_stalls
        self.grace = grace
        self.max_jobs = max_jobs
        self.id = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.store = app.store
        # Read from other threads (metrics, the lease keeper) as well as shared.
        self.running: dict[Lease, Running] = {}
        self.stats = WorkerStats()  # what its jobs did, sent with each heartbeat
        self.job_log = JobLog(verbose)  # what it says about jobs (verbose: each start and end)
        self._stop = StopRequest()
        self._shared: Shared | None = None  # what its parts share, once it runs

    @property
    def processed(self) -> int:
        """Outcomes (completed, retry, failed) Redis has recorded."""
        return self._shared.outcomes.processed if self._shared is not None else 0

    @property
    def retired(self) -> bool:
        """Whether it stopped by itself, its ``max_jobs`` run."""
        return self._stop.retired

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Whether the worker is healthy (its event loop answers: see
        worker/health.py), and what its metrics port's ``/health`` says.
        Read from any thread."""
        shared = self._shared
        if shared is None:
            return True, {"status": "starting", "worker": self.id}
        healthy, seen = shared.health.report(self.lease_ms / 1000)
        if healthy and self._stop.requested:
            seen["status"] = "stopping"
        seen |= {"running": len(self.running), "concurrency": self.concurrency}
        return healthy, {"worker": self.id, **seen}

    def pending(self) -> bool:
        """Whether outcomes wait to be reported."""
        return self._shared is not None and self._shared.outcomes.pending()

    # -- stopping -----------------------------------------------------------------

    def stop(self, *, now: bool = False) -> None:
        """Stop fetching; running jobs get the grace period (none if ``now``).
        Safe to call from any thread, and once the worker has ended (a no-op)."""
        if self._shared is None:
            self._request_stop(now)
        else:
            with contextlib.suppress(RuntimeError):  # its loop is closed: it has ended
                self._shared.loop.call_soon_threadsafe(self._request_stop, now)

    def _request_stop(self, now: bool) -> None:
        if self._stop.requested:
            now = True  # a second request: stop at once
        self._stop.requested = True
        self._stop.now = self._stop.now or now
        if self._shared is not None:
            self._shared.wake()

    def _on_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if self._stop.requested:
            log.warning("%s again: stopping now, handing back running jobs", name)
        else:
            log.info("%s: finishing running jobs (up to %s s), then exiting", name, self.grace)
        self._request_stop(False)  # already on the loop

    # -- running ------------------------------------------------------------------

    async def run(self) -> None:
        """Run until stopped (or, in burst mode, until the queues are empty)."""
        self.app.import_includes()
        shared = self._shared = self._share(asyncio.get_running_loop())
        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                shared.loop.add_signal_handler(signum, self._on_signal, signum)
            except (ValueError, RuntimeError):  # not the main thread
                pass
        jobs = Jobs(shared)
        keeper, idle, background = None, None, []
        try:
            if not await connect(shared):
                return
            log_start(shared)
            keeper = LeaseKeeper(shared, jobs.stop_lost)
            keeper.start()
            background.append(asyncio.create_task(housekeeping_loop(shared)))
            if not self.burst:  # a burst worker runs what is there, keeps no schedule going
                background.append(asyncio.create_task(cron_loop(shared)))
            idle = IdleWait(shared, jobs)
            exchange = Exchange(shared, jobs, idle)
            await exchange.loop()
            await shutdown(shared, idle, exchange)
        finally:
            await self._end(shared, jobs, idle, keeper, background)

    def _share(self, loop: asyncio.AbstractEventLoop) -> Shared:
        config = WorkerConfig(
            id=self.id, queues=tuple(self.queues), concurrency=self.concurrency,
            burst=self.burst, lease_ms=self.lease_ms, max_stalls=self.max_stalls,
            grace=self.grace, max_jobs=self.max_jobs,
            settings={q: self.app.settings(q) for q in self.queues},
        )  # fmt: skip
        return Shared(
            self.app, self.store, config, loop, self._stop, self.running,
            self.stats, self.job_log, self.processes,
        )  # fmt: skip

    async def _end(
        self,
        shared: Shared,
        jobs: Jobs,
        idle: IdleWait | None,
        keeper: LeaseKeeper | None,
        background: list[asyncio.Task[None]],
    ) -> None:
        """Stop what runs beside the exchange loop, each step bounded: a task
        that swallows its cancellation (redis-py may, mid-call) is left behind
        rather than waited for."""
        shared.ending.set()
        if idle is not None and idle.watch is not None:
            background.append(idle.watch)  # ended by shutdown(); else cancelled here
        await settle(background, 5.0)
        if keeper is not None:
            keeper.stop(timeout=5.0)  # before unregistering: it renews the registration
        closing = [self.processes.close()]
        if idle is not None:
            closing.append(idle.close())
        if keeper is not None:  # it was registered: its registration would expire anyway
            closing.append(self.store.unregister_worker(self.id))
        await settle([asyncio.ensure_future(c) for c in closing], 5.0)
        jobs.close()
        log.info("worker %s stopped; %d outcomes reported", self.id, self.processed)
