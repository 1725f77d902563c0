"""The worker: leases jobs, runs them, reports their outcomes, renews leases.

One asyncio loop per process. Async jobs run as tasks on it; sync jobs run in a
thread pool, or in child processes (``process_pool.py``). Four coroutines share
the work:

- the exchange loop: one script call per queue that reports finished jobs and
  leases up to as many new ones as there are free slots; when nothing is
  ready it sleeps until a job ends, a producer wakes it, or a scheduled job
  falls due;
- the marker watch (``idle.py``): blocks on Redis (BZPOPMIN, its own
  connection) so an idle worker wakes within a round trip of an enqueue, and
  costs nothing meanwhile;
- housekeeping (``housekeeping.py``): moves other workers' expired leases
  back to ready, and sends the counts of what the jobs did;
- the jobs themselves (``execution.py``).

The leases themselves are renewed by a thread (``lease_keeper.py``), so that
an async job that blocks the loop does not lose them.

Stopping (SIGTERM, ``stop()``): ``shutdown.py``. No step of it depends on a
cancellation getting through: every background loop ends on ``ending``, and
every wait at the end is bounded.

Redis errors never stop the worker: running jobs go on, outcomes wait in
memory, and every call is retried with back-off until Redis answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..app import App
from ..serializer import dump_error
from ..stats import WorkerStats
from ..store import REFUSED, Leased, check_queue_name, job_ref, redacted
from .execution import Outcome, execute
from .housekeeping import housekeeping_loop, recover, stop_lost
from .idle import IdleWait
from .job_log import JobLog
from .lease_keeper import LeaseKeeper
from .memory import format_size, parse_size
from .process_pool import ProcessPool
from .reconnect import REDIS_ERRORS, Backoff, retrying
from .scheduler import cron_loop
from .shutdown import REPORT_FOR, hand_back, shutdown
from .waits import settle, wait_set

log = logging.getLogger("tarefa.worker")

MAX_BATCH = 200  # most jobs leased in one call


SOLO_AFTER_STALLS = 2  # a job caught in this many dead workers runs alone (Worker.suspect)


@dataclass(slots=True)
class Running:
    queue: str
    job: Leased
    task: asyncio.Task | None
    cancel: threading.Event | None = None  # what current_job().cancelled reads


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
    either way (``job_log.py``).
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
    ):
        if isinstance(queues, str):
            queues = [queues]
        if not queues:
            raise ValueError("a worker needs at least one queue")
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be an int >= 1, not {concurrency!r}")
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
        self.id = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.store = app.store
        self.running: dict[tuple[str, bytes], Running] = {}  # by (job id, lease token)
        self.stuck_threads = 0  # timed-out sync jobs whose thread has not returned
        self.solo: tuple[str, bytes] | None = None  # a suspect job, running alone (take)
        self.solo_wanted = False  # a suspect was handed back: drain, then take it alone
        self.outcomes: dict[str, list[tuple]] = defaultdict(list)
        self.limits: dict[str, tuple[int, ...]] = {}  # per queue, for the fetch script
        self.processed = 0  # outcomes (completed, retry, failed) Redis has recorded
        self.stats = WorkerStats()  # what its jobs did, sent with each heartbeat
        self.job_log = JobLog(verbose)  # what it says about jobs (verbose: each start and end)
        self._executor = ThreadPoolExecutor(concurrency, thread_name_prefix="tarefa-job")
        # Sync hooks get threads of their own: a job that outlived its timeout
        # holds a job thread, and its outcome, reported after its hooks, must not
        # wait for that thread to come back.
        self._hook_executor = ThreadPoolExecutor(concurrency, thread_name_prefix="tarefa-hook")
        self._stopping = False
        self.stop_now = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.changed: asyncio.Event | None = None  # set when there may be work to do
        self.ending: asyncio.Event | None = None  # set when the background loops must end
        self.idle: IdleWait | None = None
        self.memory_policy: str | None = None  # Redis's maxmemory-policy, if it says

    # -- lifecycle --------------------------------------------------------------

    def stop(self, *, now: bool = False) -> None:
        """Stop fetching; running jobs get the grace period (none if ``now``).
        Safe to call from any thread, and once the worker has ended (a no-op)."""
        if self._loop is None:
            self._request_stop(now)
        else:
            with contextlib.suppress(RuntimeError):  # its loop is closed: it has ended
                self._loop.call_soon_threadsafe(self._request_stop, now)

    def _request_stop(self, now: bool) -> None:
        if self._stopping:
            now = True  # a second request: stop at once
        self._stopping = True
        self.stop_now = self.stop_now or now
        if self.changed is not None:
            self.changed.set()

    def _on_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if self._stopping:
            log.warning("%s again: stopping now, handing back running jobs", name)
        else:
            log.info("%s: finishing running jobs (up to %s s), then exiting", name, self.grace)
        self._request_stop(False)  # already on the loop

    async def run(self) -> None:
        """Run until stopped (or, in burst mode, until the queues are empty)."""
        self.app.import_includes()
        self.changed = asyncio.Event()
        self.ending = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                self._loop.add_signal_handler(signum, self._on_signal, signum)
            except (ValueError, RuntimeError):  # not the main thread
                pass
        # Each queue's limits as the fetch script takes them (see tarefa.limits).
        self.limits = {q: self.app.settings(q).as_args() for q in self.queues}
        keeper, background = None, []
        try:
            if not await self._connect():
                return
            self._log_start()
            keeper = LeaseKeeper(self, self._loop, functools.partial(stop_lost, self))
            keeper.start()
            background.append(asyncio.create_task(housekeeping_loop(self)))
            if not self.burst:  # a burst worker runs what is there, keeps no schedule going
                background.append(asyncio.create_task(cron_loop(self)))
            self.idle = IdleWait(self)
            await self._exchange_loop()
            await shutdown(self)
        finally:
            await self._end(keeper, background)

    async def _end(self, keeper: LeaseKeeper | None, background: list[asyncio.Task]) -> None:
        """Stop what runs beside the exchange loop, each step bounded: a task
        that swallows its cancellation (redis-py may, mid-call) is left behind
        rather than waited for."""
        self.ending.set()
        if self.idle is not None and self.idle.watch is not None:
            background.append(self.idle.watch)  # ended by shutdown(); else cancelled here
        await settle(background, 5.0)
        if keeper is not None:
            keeper.stop(timeout=5.0)  # before unregistering: it renews the registration
        closing = [self.processes.close()]
        if self.idle is not None:
            closing.append(self.idle.client.aclose())
        if keeper is not None:  # it was registered: its registration would expire anyway
            closing.append(self.store.unregister_worker(self.id))
        await settle([asyncio.ensure_future(c) for c in closing], 5.0)
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._hook_executor.shutdown(wait=False, cancel_futures=True)
        log.info("worker %s stopped; %d outcomes reported", self.id, self.processed)

    async def _connect(self) -> bool:
        """Register, and recover dead workers' jobs, once Redis answers; False
        if stopped before it did. Wrong credentials or a missing ACL
        permission end the start (raised): waiting does not mend them."""
        backoff = Backoff()
        while not self._stopping:
            self.changed.clear()
            try:
                await self._register()
                await recover(self)
                await self._check_memory_policy()
                return True
            except REFUSED:
                raise
            except REDIS_ERRORS as exc:
                await self.sleep(backoff.next(exc))
        return False

    def _log_start(self) -> None:
        max_memory = self.processes.max_memory
        on_processes = self.processes.default == "process"
        log.info(
            "worker %s: queues %s, concurrency %d%s%s%s%s",
            self.id, ",".join(self.queues), self.concurrency,
            ", process pool" if on_processes else "",
            f", max memory {format_size(max_memory)} per job process" if max_memory else "",
            " (pool='process' tasks only)" if max_memory and not on_processes else "",
            ", burst" if self.burst else "",
        )  # fmt: skip

    async def _check_memory_policy(self) -> None:
        """Say, loudly, when Redis may delete jobs to make room."""
        memory = await self.store.amemory()
        self.memory_policy = memory.policy
        if memory.warning:
            log.warning("%s (Redis at %s)", memory.warning, redacted(self.store.url))
        elif memory.unknown:
            log.info("%s", memory.unknown)

    async def _register(self) -> None:
        info = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "queues": ",".join(self.queues),
            "concurrency": self.concurrency,
            "started_at": int(time.time() * 1000),
            "running": 0,
        }
        if not await self.store.register_worker(self.id, info, self.lease_ms):
            log.warning(
                "Redis is full (maxmemory reached): it refused this worker's registration, so "
                "tarefa info and the dashboard do not list it yet. It runs jobs all the same "
                "(what frees memory goes through), and registers once there is room"
            )

    # -- the exchange loop --------------------------------------------------------

    async def _exchange_loop(self) -> None:
        backoff = Backoff()
        while not self._stopping:
            self.changed.clear()
            try:
                leased, next_due, active = await self.exchange()
            except REDIS_ERRORS as exc:
                await self.sleep(backoff.next(exc))
                continue
            except Exception as exc:  # a bug of tarefa's own: log it, never die of it
                log.exception("exchange failed")
                await self.sleep(backoff.next(exc))
                continue
            backoff.reset()
            if leased:
                continue  # maybe more is ready: ask again at once (free slots permitting)
            # All slots free, so every queue was just asked: nothing ready, running,
            # or scheduled anywhere in them.
            idle = self.free_slots() == self.concurrency and not self.pending()
            drained = idle and active == 0 and next_due < 0
            if self.burst and drained:
                return
            if not self.pending():  # else loop: report the outcomes first
                await self.idle.sleep(next_due)

    async def exchange(self, *, lease: bool = True) -> tuple[int, int, int]:
        """Report outcomes and lease new jobs, queue by queue in priority order."""
        leased_total, active_total, dues = 0, 0, []
        for queue in self.queues:
            want = min(self.free_slots(), MAX_BATCH) if lease else 0
            outcomes = self.outcomes.get(queue)
            if want <= 0 and not outcomes:
                continue
            sent = outcomes[:] if outcomes else []
            fetched = await self.store.fetch(
                queue,
                self.id,
                want=max(want, 0),
                lease_ms=self.lease_ms,
                max_stalls=self.max_stalls,
                limits=self.limits[queue],
                outcomes=sent,
            )
            if sent:  # recorded: forget them
                del outcomes[: len(sent)]
                self.processed += len(sent) - len(fetched.stale)
            self.job_log.recorded(sent, fetched.discarded)
            self.job_log.recovered(queue, fetched.recovered, self.max_stalls)
            if fetched.lost:  # they took the places of jobs that may wait behind them
                self.report_lost(queue, fetched.lost)
                leased_total += 1  # look again at once
            if fetched.ended:
                await self.resolve_waiting(queue, fetched.ended, sent)
                leased_total += 1  # jobs may have been released: look again at once
            await self.take(queue, fetched.jobs)
            leased_total += len(fetched.jobs)
            active_total += fetched.active
            if fetched.next_due_ms >= 0:
                dues.append(fetched.next_due_ms)
        return leased_total, min(dues, default=-1), active_total

    async def resolve_waiting(self, queue: str, ended, sent) -> None:
        """Tell the jobs waiting for the ones that just ended (chains, groups);
        ``sent``: the outcomes just reported (the results of completed ones).
        If Redis fails here, the periodic check of waiting jobs tells them."""
        results = {o[0]: o[3] for o in sent if o[2] == "completed"}
        for job_id, outcome, children in ended:
            parent = job_ref(queue, job_id)
            try:
                await self.store.aresolve(parent, outcome, results.get(job_id, b""), children)
            except REDIS_ERRORS as exc:
                log.warning("job %s: could not tell the jobs waiting for it yet: %s", job_id, exc)

    def report_lost(self, queue: str, job_ids: list[str]) -> None:
        """Jobs found gone: their id was in the queue, their data no longer in
        Redis. Counted by the store (the queue's "lost" count); each said here."""
        policy = self.memory_policy
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

    def pending(self) -> bool:
        """Whether outcomes wait to be reported."""
        return any(self.outcomes.values())

    def wake(self) -> None:
        """Have the exchange loop look again at once (something changed)."""
        self.changed.set()

    def free_slots(self) -> int:
        if self.solo is not None or (self.solo_wanted and self.running):
            return 0  # a suspect job runs alone (see take)
        return self.concurrency - len(self.running) - self.stuck_threads

    def suspect(self, job: Leased) -> bool:
        """Whether the job was running in workers that died twice (once if a
        single stall is allowed). It may be what kills them (a segfault, an
        os._exit), or it may have been a bystander: either way it runs alone,
        so an innocent job is never failed for stalls a poison job caused, and
        a poison job takes no one else down with it."""
        return job.stalls >= max(1, min(SOLO_AFTER_STALLS, self.max_stalls))

    async def take(self, queue: str, jobs: list[Leased]) -> None:
        """Start the leased jobs that fit in the free slots; hand back the rest
        (two paths lease concurrently: the exchange loop and the blocking wait).
        A suspect job starts only in an idle worker, which then leases nothing
        until it ends; a busy worker hands it back and drains to take it."""
        surplus = []
        if not self.running and not self._stopping:
            self.solo_wanted = False
            suspect = next((job for job in jobs if self.suspect(job)), None)
            if suspect is not None:
                self.solo = self._start(queue, suspect)
                jobs = [job for job in jobs if job is not suspect]
        for job in jobs:
            if self._stopping or self.free_slots() <= 0:
                surplus.append(Running(queue, job, None))
            elif self.suspect(job):
                self.solo_wanted = True
                surplus.append(Running(queue, job, None))
            else:
                self._start(queue, job)
        if surplus:
            why = "the worker is stopping" if self._stopping else None
            await retrying(hand_back, self, surplus, why, give_up_after=REPORT_FOR)

    def _start(self, queue: str, job: Leased) -> tuple[str, bytes]:
        cancel = threading.Event()
        task = asyncio.create_task(self._run_job(queue, job, cancel))
        self.running[job.id, job.token] = Running(queue, job, task, cancel)
        return job.id, job.token

    async def _run_job(self, queue: str, job: Leased, cancel: threading.Event) -> None:
        self.stats.started(queue, job.task)
        began = self.job_log.started(queue, job)
        try:
            outcome: Outcome = await execute(
                self.app, queue, job, self._executor, cancel=cancel,
                thread_outlived=self._thread_outlived, processes=self.processes,
                hook_executor=self._hook_executor,
            )  # fmt: skip
        except asyncio.CancelledError:  # stopped: its lease was lost, or shutdown
            self._ended(job)
            return
        except Exception as exc:  # a bug of tarefa's own: still report the job
            log.exception("job %s: internal error", job.id)
            outcome = Outcome("failed", dump_error("InternalError", repr(exc)), 0)
        self.stats.ended(queue, job.task, outcome.kind, time.monotonic() - began)
        if self._ended(job):  # else its lease was lost, or it was handed back
            self.outcomes[queue].append(outcome.as_args(job))
            self.job_log.ended(queue, job, outcome, began)

    def _ended(self, job: Leased) -> bool:
        """Free the job's slot; False if it had been freed already."""
        if self.solo == (job.id, job.token):
            self.solo = None
        self.changed.set()
        return self.running.pop((job.id, job.token), None) is not None

    def _thread_outlived(self, future) -> None:
        """A sync job timed out but its thread runs on: it keeps its slot until
        it returns, so no later job waits for a thread with its clock running."""
        self.stuck_threads += 1
        if self.stuck_threads >= self.concurrency:
            log.error(
                "all %d slots are held by sync jobs that timed out and have not returned: "
                "this worker runs nothing more until one does. A job that may hang is "
                "better in the process pool (pool='process'), where its timeout kills it",
                self.concurrency,
            )

        def returned(_):
            self._loop.call_soon_threadsafe(self._thread_returned)

        future.add_done_callback(returned)

    def _thread_returned(self) -> None:
        self.stuck_threads -= 1
        self.changed.set()

    async def sleep(self, seconds: float) -> None:
        """Sleep, unless something changes meanwhile (a job ends, a stop)."""
        await wait_set(self.changed, seconds)

    async def wait_ending(self, seconds: float) -> bool:
        """Sleep; True (at once) if the background loops must end."""
        return await wait_set(self.ending, seconds)
