"""The worker's handle on one child process of the process pool: the socket
a job's request goes out on and its answer (or progress) comes back on, the
child's exit, and killing it. What runs inside the child: ``process_child.py``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import signal
from collections.abc import Callable
from multiprocessing.process import BaseProcess

from .process_child import SIZE, ChildError, Message, Progress

log = logging.getLogger("tarefa.worker")

KILL_WAIT = 2.0  # seconds to wait for a killed child to be gone before moving on


class WorkerProcessDied(ChildError):
    """The child process running a job died before it answered."""

    def __init__(self, message: str):
        super().__init__("WorkerProcessDied", message)


def describe_exit(code: int | None) -> str:
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


class Child:
    """One child process, and its socket seen from the worker's event loop."""

    def __init__(
        self, proc: BaseProcess, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ):
        assert proc.pid is not None, "a child's handle is made once it has started"
        self.proc = proc
        self.pid: int = proc.pid
        self.reader = reader
        self.writer = writer
        loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[int | None] = loop.create_future()  # its exit code
        self.reply: asyncio.Future[Message] = loop.create_future()  # the answer awaited now
        self.on_progress: Callable[[float, str | None], None] | None = None
        self.over_limit: int | None = None  # bytes used when killed for using too much
        loop.add_reader(proc.sentinel, self._on_exit)
        self.listener = asyncio.create_task(self._listen())

    @property
    def alive(self) -> bool:
        return not self.exited.done()

    def send(self, message: Message) -> asyncio.Future[Message]:
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
                if isinstance(message, Progress):
                    if self.on_progress is not None:
                        try:
                            self.on_progress(message.value, message.message)
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
            self.reply.set_exception(WorkerProcessDied(describe_exit(code)))

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
