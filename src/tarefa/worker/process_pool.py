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
  picklable. One socket per child carries length-prefixed messages.
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
import pickle
import signal
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..app import App, find_app_path
from ..context import _current
from ..options import check_pool
from .memory import CHECK_INTERVAL, format_size, memory_reader
from .process_child import SIZE, ChildError, ChildFailed, Encoded, child_main, read_answer

if TYPE_CHECKING:
    from ..store import Leased
    from ..task import Task

log = logging.getLogger("tarefa.worker")

KILL_WAIT = 2.0  # seconds to wait for a killed child to be gone before moving on
START_TIMEOUT = 60.0  # seconds a new child may take to import the app


class WorkerProcessDied(ChildError):
    """The child process running a job died before it answered."""

    def __init__(self, message: str):
        super().__init__("WorkerProcessDied", message)


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "the job's process is gone (exit code unknown)"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (killed: out of memory?)" if -code == signal.SIGKILL else ""
        return f"the job's process died: exit code {code}, {name}{hint}"
    return f"the job's process died: exit code {code}"


class _Child:
    """One child process, and its socket seen from the worker's event loop."""

    def __init__(self, proc, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.proc = proc
        self.pid: int = proc.pid
        self.reader = reader
        self.writer = writer
        loop = asyncio.get_running_loop()
        self.exited: asyncio.Future = loop.create_future()  # its exit code
        self.reply: asyncio.Future = loop.create_future()  # the answer awaited now
        self.on_progress: Callable | None = None
        self.over_limit: int | None = None  # bytes used when killed for using too much
        loop.add_reader(proc.sentinel, self._on_exit)
        self.listener = asyncio.create_task(self._listen())

    @property
    def alive(self) -> bool:
        return not self.exited.done()

    def send(self, message: tuple) -> asyncio.Future:
        """Send a request; the future is the child's answer."""
        self.reply = asyncio.get_running_loop().create_future()
        body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self.writer.writelines((SIZE.pack(len(body)), body))  # one send
        except (ConnectionError, OSError):  # gone: its exit fails the reply
            self.kill()
        return self.reply

    async def _listen(self) -> None:
        try:
            while True:
                size = SIZE.unpack(await self.reader.readexactly(SIZE.size))[0]
                message = pickle.loads(await self.reader.readexactly(size))
                if message[0] == "progress":
                    if self.on_progress is not None:
                        try:
                            self.on_progress(*message[1:])
                        except Exception as exc:  # best effort, like any progress report
                            log.warning("progress report failed: %r", exc)
                elif not self.reply.done():
                    self.reply.set_result(message)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass  # its end closed: it died or is dying
        except Exception:
            log.exception("process %d: bad message", self.pid)
        # Make sure it is gone, and answer with its exit code.
        self.kill()
        await asyncio.wait({self.exited}, timeout=KILL_WAIT)
        self._fail_reply()

    def _on_exit(self) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(self.proc.sentinel)
        if not self.exited.done():
            self.exited.set_result(self.proc.exitcode)
        self._fail_reply()

    def _fail_reply(self) -> None:
        if not self.reply.done():
            code = self.exited.result() if self.exited.done() else None
            self.reply.set_exception(WorkerProcessDied(_describe_exit(code)))

    def kill(self) -> None:
        """SIGKILL, unless it has already exited."""
        if self.alive and self.proc.exitcode is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def close_socket(self) -> None:
        try:
            self.writer.close()
        except Exception:
            pass

    async def reap(self, timeout: float) -> bool:
        """Wait until it has exited (True), then free what it holds."""
        if self.alive:
            await asyncio.wait({self.exited}, timeout=timeout)
        if self.alive:
            return False
        self.close_socket()
        if not self.listener.done():
            self.listener.cancel()
        try:
            self.proc.join(0)  # known to have exited: does not block
            self.proc.close()
        except Exception:
            pass
        return True


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
        self._used = memory_reader() if max_memory is not None else None
        if default == "process" and app_path is None:
            # Every sync job needs it: say so now, not at the first job.
            app_path = find_app_path(app)
            if app_path is None:
                raise ValueError(
                    "pool='process': cannot tell where the app is imported from; "
                    "pass app_path='package.module:app'"
                )
        self.app_path: str | None = app_path
        self._idle: list[_Child] = []
        self._children: set[_Child] = set()  # alive or not yet reaped
        self._starting: asyncio.Lock | None = None
        self._closed = False

    def runs(self, task: Task) -> bool:
        """Whether this task's jobs run here: a sync task whose own ``pool``
        says so, or that names none on a ``--pool process`` worker."""
        return not task.is_async and (task.options.pool or self.default) == "process"

    @property
    def pids(self) -> list[int]:
        """The live children's pids."""
        return sorted(c.pid for c in self._children if c.alive)

    async def run(self, queue: str, job: Leased, task: Task, timeout: float | None) -> Encoded:
        """Run one job in a child; its result, still serialized. Raises what the
        job raised (as ``ChildError`` or ``ChildRetry``), ``TimeoutError`` (the
        child is killed), ``WorkerProcessDied``; cancelled, it kills the child."""
        child = await self._acquire()
        context = _current.get()
        child.on_progress = context.progress if context is not None else None
        reply = child.send(("job", job.id, queue, task.name, job.attempts, job.payload))
        watch = asyncio.create_task(self._watch(child, job.id)) if self.max_memory else None
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
                    f"worker's max memory of {format_size(self.max_memory)}; it was killed"
                ) from None
            raise
        if (used := self._over_limit(child)) is not None:
            log.info(
                "process %d uses %s after job %s, more than the max memory of %s: replaced",
                child.pid, format_size(used), job.id, format_size(self.max_memory),
            )  # fmt: skip
            await self._discard(child)
        elif child.alive and not self._closed:
            self._idle.append(child)
        else:
            await self._discard(child)
        return read_answer(answer)

    async def _watch(self, child: _Child, job_id: str) -> None:
        """Kill the child once its memory passes ``max_memory``."""
        while child.alive:
            await asyncio.sleep(CHECK_INTERVAL)
            used = self._used(child.pid)
            if used is not None and used > self.max_memory:
                log.warning(
                    "job %s: its process %d used %s, more than the max memory of %s: killed",
                    job_id, child.pid, format_size(used), format_size(self.max_memory),
                )  # fmt: skip
                child.over_limit = used
                child.kill()
                return

    def _over_limit(self, child: _Child) -> int | None:
        """The child's memory, if it is above ``max_memory``."""
        if self.max_memory is None:
            return None
        used = self._used(child.pid)
        return used if used is not None and used > self.max_memory else None

    async def _acquire(self) -> _Child:
        while self._idle:
            child = self._idle.pop()
            if child.alive and (used := self._over_limit(child)) is None:
                return child
            if child.alive:  # grown while idle: threads its last job left running
                log.info(
                    "process %d uses %s, more than the max memory of %s: replaced",
                    child.pid, format_size(used), format_size(self.max_memory),
                )  # fmt: skip
            await self._discard(child)
        return await self._start()

    async def _start(self) -> _Child:
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
        if answer[0] != "ready":  # the app did not import: ("error", type, message, tb)
            await self._discard(child)
            raise ChildError(*answer[1:])
        if (used := self._over_limit(child)) is not None:
            await self._discard(child)
            raise ChildError(
                "ProcessPoolError",
                f"a new process uses {format_size(used)} once it has loaded the app "
                f"{self.app_path}, more than the worker's max memory of "
                f"{format_size(self.max_memory)}: raise the limit",
            )
        log.debug("process %d started", child.pid)
        return child

    async def _spawn(self) -> _Child:
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
        root = logging.getLogger()  # the child logs as the worker does, if it does
        logging_level = root.level if root.handlers else None
        proc = _context().Process(
            target=child_main,
            args=(child_sock, self.app_path, dict(os.environ), logging_level),
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
        return _Child(proc, reader, writer)

    async def _discard(self, child: _Child) -> None:
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
def _context():
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        # The fork server (started once) imports tarefa, so its children do not.
        context.set_forkserver_preload([__name__])
    return context


def _start_process(proc, child_sock: socket.socket) -> None:
    try:
        proc.start()
    finally:
        child_sock.close()  # the child has its own copy now


def _kill_quietly(proc) -> None:
    try:
        proc.kill()
    except Exception:
        pass
