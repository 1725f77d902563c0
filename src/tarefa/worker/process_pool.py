"""The process pool: sync jobs run in child processes that can be killed.

A thread cannot be stopped, so a timed-out or cancelled sync job in the thread
pool runs on until it returns. Here each job runs in a child process instead;
the worker keeps up to ``concurrency`` of them, started on first use and reused
from job to job, and kills the one running a job that timed out, was cancelled
or is still running when the worker stops.

- Children are started with the ``forkserver`` method (``spawn`` where there is
  none): a fork server, started once and with tarefa already imported, forks
  each child, so a child starts in milliseconds, free of the worker's threads
  and event loop. A child then imports the App by its path (``package.module:
  attribute``, found when the worker starts) and runs jobs: that side is
  ``process_child.py``.
- A job crosses over as its serialized payload and comes back as the serialized
  result, or as its error's type, message and traceback: nothing has to be
  picklable. One socket per child carries length-prefixed messages; the
  worker's end of it, and of the child, is ``process_handle.py``.
- Kill policy: SIGKILL at once, no SIGTERM first. The attempt is over by then
  (timed out, cancelled, or handed back at shutdown), so a clean-up the job
  could run would gain nothing, and the slot is free at once. Only the worker
  ends its children: they ignore SIGINT and SIGTERM, and exit by themselves
  when the worker goes away.
- A child that dies by itself (``os._exit``, a crash, the OOM killer) fails the
  attempt with ``WorkerProcessDied`` (counted per the task's retry policy) and
  is replaced by a new one on the next job.
- ``max_memory``: a child running a job is killed once its resident memory
  passes the limit, and its attempt fails with ``WorkerProcessDied``; a child
  above it after a job is replaced. Why the worker watches rather than the
  child setting an rlimit: ``memory.py``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
import os
import socket
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from .. import logs
from ..app import App
from ..context import _current
from ..loading import find_app_path
from ..options import check_pool
from .memory import MemoryLimit, format_size
from .process_child import (
    ChildError,
    ChildFailed,
    Encoded,
    Raised,
    Ready,
    RunJob,
    child_main,
    read_answer,
)
from .process_handle import KILL_WAIT, Child, WorkerProcessDied

if TYPE_CHECKING:
    from multiprocessing.context import ForkServerContext, SpawnContext

    from ..records import Leased
    from ..task import Task

log = logging.getLogger("tarefa.worker")

START_TIMEOUT = 60.0  # seconds a new child may take to import the app


class ProcessPool:
    """Child processes running sync jobs, one job at a time each: one per job
    running, so the worker's slots bound their number. Nothing starts until a
    job needs a process; an idle child waits for the next job.

    ``default``: the worker's pool, for tasks that name none. ``max_memory``:
    bytes of resident memory a child may use while it runs a job.
    """

    def __init__(
        self,
        app: App,
        *,
        default: str = "thread",
        app_path: str | None = None,
        max_memory: int | None = None,
    ):
        self.app = app
        self.default = check_pool(default)
        self.max_memory = max_memory
        self.memory = MemoryLimit(max_memory) if max_memory is not None else None
        if default == "process" and app_path is None:
            # Every sync job needs it: say so now, not at the first job.
            app_path = find_app_path(app)
            if app_path is None:
                raise ValueError(
                    "pool='process': cannot tell where the app is imported from; "
                    "pass app_path='package.module:app'"
                )
        self.app_path: str | None = app_path
        self._idle: list[Child] = []
        self._children: set[Child] = set()  # alive or not yet reaped
        self._starting: asyncio.Lock | None = None
        self._closed = False

    def runs(self, task: Task[..., Any]) -> bool:
        """Whether this task's jobs run here: a sync task whose own ``pool``
        says so, or that names none on a ``--pool process`` worker."""
        return not task.is_async and (task.options.pool or self.default) == "process"

    @property
    def pids(self) -> list[int]:
        """The live children's pids."""
        return sorted(c.pid for c in self._children if c.alive)

    async def run(
        self, queue: str, job: Leased, task: Task[..., Any], timeout: float | None
    ) -> Encoded:
        """Run one job in a child; its result, still serialized. Raises what the
        job raised (as ``ChildError`` or ``ChildRetry``), ``TimeoutError`` (the
        child is killed), ``WorkerProcessDied``; cancelled, it kills the child."""
        child = await self._acquire()
        context = _current.get()
        child.on_progress = context.progress if context is not None else None
        reply = child.send(RunJob(job.id, queue, task.name, job.attempts, job.payload, job.trace))
        watch = None
        if self.memory is not None:
            watch = asyncio.create_task(self.memory.watch(child, job.id))
        try:
            done, _ = await asyncio.wait({reply}, timeout=timeout)
        except asyncio.CancelledError:  # cancelled (lost lease), or the worker stops
            await self._discard(child)
            raise
        finally:
            if watch is not None:
                watch.cancel()
        if not done:
            await self._discard(child)
            raise TimeoutError(
                f"{task.name} did not finish within {timeout} s; its process was killed"
            )
        child.on_progress = None
        try:
            answer = reply.result()
        except WorkerProcessDied:
            await self._discard(child)  # gone: free what it held
            if child.over_limit is not None:
                raise WorkerProcessDied(
                    f"the job's process used {format_size(child.over_limit)}, more than the "
                    f"worker's max memory of {self.memory}; it was killed"
                ) from None
            raise
        if (used := self._over_limit(child)) is not None:
            log.info(
                "process %d uses %s after job %s, more than the max memory of %s: replaced",
                child.pid, format_size(used), job.id, self.memory,
            )  # fmt: skip
            await self._discard(child)
        elif child.alive and not self._closed:
            self._idle.append(child)
        else:
            await self._discard(child)
        return read_answer(answer)

    def _over_limit(self, child: Child) -> int | None:
        """The child's memory, if it is above ``max_memory``."""
        return self.memory.exceeded(child.pid) if self.memory is not None else None

    async def _acquire(self) -> Child:
        while self._idle:
            child = self._idle.pop()
            if child.alive:
                used = self._over_limit(child)
                if used is None:
                    return child
                # Grown while idle: threads its last job left running.
                log.info(
                    "process %d uses %s, more than the max memory of %s: replaced",
                    child.pid, format_size(used), self.memory,
                )  # fmt: skip
            await self._discard(child)
        return await self._start()

    async def _start(self) -> Child:
        """A new child, once it has loaded the app."""
        child = await self._spawn()
        self._children.add(child)
        try:
            done, _ = await asyncio.wait({child.reply}, timeout=START_TIMEOUT)
        except asyncio.CancelledError:
            await self._discard(child)
            raise
        if not done:
            await self._discard(child)
            raise ChildError(
                "ProcessPoolError", f"the job's process did not start within {START_TIMEOUT} s"
            )
        try:
            answer = child.reply.result()
        except WorkerProcessDied as exc:
            await self._discard(child)
            raise WorkerProcessDied(
                f"{exc.message} while loading the app {self.app_path}"
            ) from None
        if not isinstance(answer, Ready):  # the app did not import
            await self._discard(child)
            if isinstance(answer, Raised):
                raise ChildError(answer.error_type, answer.message, answer.traceback)
            raise ChildError("ProcessPoolError", f"a new process answered {answer!r}")
        if (used := self._over_limit(child)) is not None:
            await self._discard(child)
            raise ChildError(
                "ProcessPoolError",
                f"a new process uses {format_size(used)} once it has loaded the app "
                f"{self.app_path}, more than the worker's max memory of "
                f"{self.memory}: raise the limit",
            )
        log.debug("process %d started", child.pid)
        return child

    async def _spawn(self) -> Child:
        """Start a child process and connect to its socket; it loads the app next."""
        if self.app_path is None:
            self.app_path = find_app_path(self.app)
            if self.app_path is None:
                raise ChildFailed(
                    "ProcessPoolError",
                    "cannot tell where the app is imported from: bind it to a module-level "
                    "name, or give the worker its path (Worker(..., app_path='pkg.mod:app'))",
                )
        if self._starting is None:
            self._starting = asyncio.Lock()
        loop = asyncio.get_running_loop()
        parent_sock, child_sock = socket.socketpair()
        proc = _context().Process(
            target=child_main,
            # The child logs as the worker does, if tarefa set its logging up
            # (an app that did sets it up again as the child imports it).
            args=(child_sock, self.app_path, dict(os.environ), logs.applied()),
            name="tarefa-job",
        )
        async with self._starting:  # one start at a time: multiprocessing's own state
            started = loop.run_in_executor(None, _start_process, proc, child_sock)
            try:
                await asyncio.shield(started)
            except asyncio.CancelledError:
                parent_sock.close()  # the child reads end-of-file and exits
                started.add_done_callback(lambda _: _kill_quietly(proc))
                raise
            except BaseException:
                parent_sock.close()
                raise
        reader, writer = await asyncio.open_connection(sock=parent_sock)
        return Child(proc, reader, writer)

    async def _discard(self, child: Child) -> None:
        """Kill a child (no-op if it is gone) and wait, briefly, until it is."""
        if child in self._idle:
            self._idle.remove(child)
        if not child.reply.done():
            child.reply.cancel()  # nobody waits for it any more
        child.kill()
        if await child.reap(KILL_WAIT):
            self._children.discard(child)
        else:
            log.warning("process %d still there %s s after SIGKILL", child.pid, KILL_WAIT)

    async def close(self) -> None:
        """Stop every child: idle ones are told to exit (their socket closes),
        the rest are killed."""
        self._closed = True
        idle, self._idle = self._idle, []
        for child in idle:
            child.close_socket()
        busy = [c for c in self._children if c not in idle]
        for child in busy:
            child.kill()
        children = list(self._children)
        if children:
            await asyncio.wait([c.exited for c in children], timeout=KILL_WAIT)
        for child in children:
            child.kill()  # an idle one that did not exit when told
            if await child.reap(KILL_WAIT):
                self._children.discard(child)
        self._closed = False  # the worker may run again


@functools.cache
def _context() -> ForkServerContext | SpawnContext:
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        # The fork server (started once) imports tarefa, so its children do not.
        context.set_forkserver_preload([__name__])
        return context
    return multiprocessing.get_context("spawn")


def _start_process(proc: BaseProcess, child_sock: socket.socket) -> None:
    try:
        proc.start()
    finally:
        child_sock.close()  # the child has its own copy now


def _kill_quietly(proc: BaseProcess) -> None:
    try:
        proc.kill()
    except Exception:
        pass
