"""The worker's slots: which leased jobs start, each job's run to its
outcome, and the slot freed as it ends.

Async jobs run as tasks on the loop; sync jobs in a thread pool, or in the
process pool (execution.py decides). A sync job that outlives its timeout
keeps its slot until its thread returns, so no later job waits for a thread
with its clock running.

**Jobs that kill their worker.** A job caught in ``SOLO_AFTER_STALLS`` dead
workers is a *suspect*, and runs alone: an idle worker starts it and leases
nothing else until it ends; a busy worker hands it back and drains (no free
slot) to take it next.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..records import Leased, LeaseLoss, Outcome
from .execution import execute, failed
from .reconnect import retrying
from .reports import REPORT_FOR, hand_back
from .running import Lease, Running
from .shared import Shared

log = logging.getLogger("tarefa.worker")

SOLO_AFTER_STALLS = 2  # a job caught in this many dead workers runs alone (Jobs.suspect)


class Jobs:
    def __init__(self, shared: Shared):
        self.shared = shared
        self.stuck_threads = 0  # timed-out sync jobs whose thread has not returned
        self.solo: Lease | None = None  # a suspect job, running alone (take)
        self.solo_wanted = False  # a suspect was handed back: drain, then take it alone
        self.started = 0  # jobs started, counted against the config's max_jobs
        concurrency = shared.config.concurrency
        self._executor = ThreadPoolExecutor(concurrency, thread_name_prefix="tarefa-job")
        # Sync hooks get threads of their own: a job that outlived its timeout
        # holds a job thread, and its outcome, reported after its hooks, must not
        # wait for that thread to come back.
        self._hook_executor = ThreadPoolExecutor(concurrency, thread_name_prefix="tarefa-hook")

    def free_slots(self) -> int:
        """Jobs it may start now: its free slots, and no more than its
        ``max_jobs`` leave (so it leases none it would hand back)."""
        free = self._free_slots()
        if self.shared.config.max_jobs is not None:
            return min(free, self.shared.config.max_jobs - self.started)
        return free

    def _free_slots(self) -> int:
        running = self.shared.running
        if self.solo is not None or (self.solo_wanted and running):
            return 0  # a suspect job runs alone (see take)
        return self.shared.config.concurrency - len(running) - self.stuck_threads

    def idle(self) -> bool:
        """Every slot free (whatever ``max_jobs`` leaves)."""
        return self._free_slots() == self.shared.config.concurrency

    def suspect(self, job: Leased) -> bool:
        """Whether the job was running in workers that died twice (once if a
        single stall is allowed). It may be what kills them (a segfault, an
        os._exit), or it may have been a bystander: either way it runs alone,
        so an innocent job is never failed for stalls a poison job caused, and
        a poison job takes no one else down with it."""
        return job.stalls >= max(1, min(SOLO_AFTER_STALLS, self.shared.config.max_stalls))

    async def take(self, queue: str, jobs: list[Leased]) -> None:
        """Start the leased jobs that fit in the free slots; hand back the rest
        (two paths lease concurrently: the exchange loop and the blocking wait).
        A suspect job starts only in an idle worker, which then leases nothing
        until it ends; a busy worker hands it back and drains to take it."""
        stopping = self.shared.stop.requested
        surplus = []
        if not self.shared.running and not stopping:
            self.solo_wanted = False
            suspect = next((job for job in jobs if self.suspect(job)), None)
            if suspect is not None:
                self.solo = self._start(queue, suspect)
                jobs = [job for job in jobs if job is not suspect]
        for job in jobs:
            if stopping or self.free_slots() <= 0:
                surplus.append(Running(queue, job, None))
            elif self.suspect(job):
                self.solo_wanted = True
                surplus.append(Running(queue, job, None))
            else:
                self._start(queue, job)
        if surplus:
            why = "the worker is stopping" if stopping else None
            await retrying(hand_back, self.shared, surplus, why, give_up_after=REPORT_FOR)

    def _start(self, queue: str, job: Leased) -> Lease:
        cancel = threading.Event()
        task = asyncio.create_task(self._run(queue, job, cancel))
        running = Running(queue, job, task, cancel)
        self.shared.running[running.lease] = running
        self.started += 1
        return running.lease

    async def _run(self, queue: str, job: Leased, cancel: threading.Event) -> None:
        shared = self.shared
        shared.stats.started(queue, job.task)
        began = shared.job_log.started(queue, job)
        try:
            outcome: Outcome = await execute(
                shared.app, queue, job, self._executor, cancel=cancel,
                thread_outlived=self._thread_outlived, processes=shared.processes,
                hook_executor=self._hook_executor,
            )  # fmt: skip
        except asyncio.CancelledError:  # stopped: its lease was lost, or shutdown
            self._ended(job)
            return
        except Exception as exc:  # a bug of tarefa's own: still report the job
            log.exception("job %s: internal error", job.id)
            outcome = failed("InternalError", repr(exc))
        shared.stats.ended(queue, job.task, outcome.kind.value, time.monotonic() - began)
        if self._ended(job):  # else its lease was lost, or it was handed back
            shared.outcomes.add(queue, outcome.of(job.id, job.token))
            shared.job_log.ended(queue, job, outcome, began)

    def _ended(self, job: Leased) -> bool:
        """Free the job's slot; False if it had been freed already."""
        if self.solo == (job.id, job.token):
            self.solo = None
        self.shared.wake()
        freed = self.shared.running.pop((job.id, job.token), None) is not None
        self._retire_when_done()
        return freed

    def _retire_when_done(self) -> None:
        """Once its ``max_jobs`` have started and ended, the worker stops as on
        SIGTERM, with nothing left to wait for. Not sooner: a job still running
        must not be cut short by the grace period of a stop no one asked for."""
        limit, stop = self.shared.config.max_jobs, self.shared.stop
        if limit is None or self.started < limit or self.shared.running or stop.requested:
            return
        log.info("worker %s: %d jobs run (max_jobs): stopping", self.shared.config.id, limit)
        stop.requested = stop.retired = True

    def _thread_outlived(self, future: asyncio.Future[Any]) -> None:
        """A sync job timed out but its thread runs on: it keeps its slot until
        it returns, so no later job waits for a thread with its clock running."""
        self.stuck_threads += 1
        if self.stuck_threads >= self.shared.config.concurrency:
            log.error(
                "all %d slots are held by sync jobs that timed out and have not returned: "
                "this worker runs nothing more until one does. A job that may hang is "
                "better in the process pool (pool='process'), where its timeout kills it",
                self.shared.config.concurrency,
            )

        def returned(_: asyncio.Future[Any] | Future[Any]) -> None:
            self.shared.loop.call_soon_threadsafe(self._thread_returned)

        future.add_done_callback(returned)

    def _thread_returned(self) -> None:
        self.stuck_threads -= 1
        self.shared.wake()

    def stop_lost(self, queue: str, lost: dict[Lease, LeaseLoss]) -> None:
        """Stop the attempts (job id, lease token: why) whose lease this worker
        lost: an async job is cancelled, a process-pool job's process is killed, a
        sync one in a thread sees ``current_job().cancelled``."""
        shared = self.shared
        for running in list(shared.running.values()):
            why = lost.get(running.lease) if running.queue == queue else None
            if why is None:
                continue
            shared.job_log.lease_lost(running, why)
            if running.cancel is not None:
                running.cancel.set()
            task = shared.app.tasks.get(running.job.task)
            runs_on_loop = task is not None and (task.is_async or shared.processes.runs(task))
            if runs_on_loop and running.task is not None:
                running.task.cancel()

    def close(self) -> None:
        """Let go of the threads: a job's thread that never returns is left behind."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._hook_executor.shutdown(wait=False, cancel_futures=True)
