"""The child side of the process pool: the code that runs in a job's process,
and what its answers mean to the worker.

The worker's ``ProcessPool`` (``process_pool.py``) starts a child, which loads
the App by its path (``package.module:attribute``) and its ``include``
modules, then runs one job at a time, finding tasks by name as the worker
does, until the worker closes its socket.

- A child ignores SIGINT and SIGTERM: a Ctrl-C or a ``kill`` of the whole
  process group must not end running jobs before the worker's grace period;
  the worker decides, with SIGKILL.
- It exits as soon as the worker goes away, even mid-job (Linux; elsewhere
  after its job), so a killed worker leaves no job running behind it.
- ``current_job()`` here has the id, queue, task, attempt and logger;
  ``progress()`` reports go through the worker; ``cancelled`` is always False
  (a cancelled job's process is killed).

Messages on the socket are pickles of the records below, each after its
length (``SIZE``); they carry only strings, numbers and bytes, so nothing of
the job's own has to be picklable:

- child to worker, once: ``Ready``, or ``Raised`` when the app does not load;
- worker to child, per job: ``RunJob``;
- child to worker: any number of ``Progress``, then the answer: ``Returned``
  (the serialized result), ``Retried``, ``Raised``, or ``Refused`` (the job
  fails at once: unknown task, bad payload, a result that cannot be stored).
  ``read_answer`` turns the answer into the result, still serialized
  (``Encoded``), or raises the error it stands for.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import socket
import struct
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import logs
from ..context import JobContext, _current
from ..errors import ResultTooLarge, Retry
from ..job_scopes import within
from ..loading import load_app
from ..serializer import Serializer, decode_call
from ..tracing import attached

if TYPE_CHECKING:
    from ..app import App

SIZE = struct.Struct("!Q")  # the length prefix of every message


# -- the messages ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ready:
    """The child loaded the app and waits for jobs."""

    pid: int


@dataclass(frozen=True, slots=True)
class RunJob:
    job_id: str
    queue: str
    task: str
    attempt: int
    payload: bytes
    trace: bytes | None = None  # the attempt's span, continued here (tracing.py)


@dataclass(frozen=True, slots=True)
class Progress:
    value: float
    message: str | None


@dataclass(frozen=True, slots=True)
class Returned:
    data: bytes  # the result, serialized in the child


@dataclass(frozen=True, slots=True)
class Retried:
    """``raise Retry(...)``."""

    delay: float | None
    message: str
    traceback: str


@dataclass(frozen=True, slots=True)
class Raised:
    """An exception: the job's (retried per its task), or the app's as it loaded."""

    error_type: str
    message: str
    traceback: str


@dataclass(frozen=True, slots=True)
class Refused:
    """The job fails at once, retries left or not."""

    error_type: str
    message: str


Answer = Returned | Retried | Raised | Refused
Message = Ready | RunJob | Progress | Answer


# -- the answers, as the worker reads them ---------------------------------------


@dataclass(slots=True)
class Encoded:
    """A result serialized in the child, stored as it is."""

    data: bytes

    def decode(self, serializer: Serializer) -> Any:
        """The value, for hooks (the raw bytes if it does not decode here)."""
        try:
            return serializer.loads(self.data)
        except Exception:
            return self.data


class ChildError(Exception):
    """A job's error as it was raised in its child process: its type name,
    message and traceback text (the exception itself does not cross over).
    ``final``: the job fails at once, retries left or not (an unknown task, a
    payload that does not decode, a result that cannot be stored)."""

    final = False

    def __init__(self, error_type: str, message: str, traceback: str = ""):
        super().__init__(f"{error_type}: {message}" if message else error_type)
        self.error_type = error_type
        self.message = message
        self.traceback = traceback


class ChildFailed(ChildError):
    final = True


class ChildRetry(Retry):
    """``raise Retry(...)`` in a child process."""

    final = False

    def __init__(self, delay: float | None, message: str, traceback: str = ""):
        super().__init__(delay, message)
        self.error_type = "Retry"
        self.message = message
        self.traceback = traceback


def read_answer(answer: Message) -> Encoded:
    """The result a child's answer to a job carries, or the error it stands for."""
    match answer:
        case Returned(data):
            return Encoded(data)
        case Retried(delay, message, traceback):
            raise ChildRetry(delay, message, traceback)
        case Refused(error_type, message):
            raise ChildFailed(error_type, message)
        case Raised(error_type, message, traceback):
            raise ChildError(error_type, message, traceback)
    raise ChildError("ProcessPoolError", f"the job's process answered {answer!r}")


# -- in the child --------------------------------------------------------------


@dataclass(frozen=True)
class _ChildContext(JobContext):
    """``current_job()`` in a child: progress goes to the worker, which stores it."""

    _report: Callable[[Message], None] = field(repr=False, kw_only=True)

    def progress(self, value: float, message: str | None = None) -> None:
        super().progress(value, message)  # checks the values; no store here
        self._report(Progress(value, message))


class _Channel:
    """The child's end of the socket: blocking, length-prefixed pickles."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.rfile = sock.makefile("rb")
        self.lock = threading.Lock()  # progress may come from a job's own threads

    def recv(self) -> Message | None:
        header = self.rfile.read(SIZE.size)
        if len(header) < SIZE.size:
            return None  # the worker closed it: time to go
        body = self.rfile.read(SIZE.unpack(header)[0])
        message: Message = pickle.loads(body)
        return message

    def send(self, message: Message) -> None:
        body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        with self.lock:
            self.sock.sendall(SIZE.pack(len(body)) + body)


def child_main(
    sock: socket.socket, app_path: str, env: dict[str, str], log_setup: tuple[str, str] | None
) -> None:
    """A child process's life: load the app, then answer the worker's jobs one
    by one until it closes the socket."""
    # Ctrl-C or a SIGTERM to the whole process group must not end a running
    # job before the worker's grace period: the worker decides, with SIGKILL.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.environ.clear()  # the worker's environment now, not the fork server's
    os.environ.update(env)
    if log_setup is not None:  # (level, format), as the worker set it up (tarefa.logs)
        logs.setup(*log_setup)
    _exit_with_worker(sock)
    channel = _Channel(sock)
    try:
        app = load_app(app_path)
        app.import_includes()
    except BaseException as exc:
        channel.send(
            Raised(
                type(exc).__name__,
                f"the job's process cannot load the app {app_path}: {_text(exc)}",
                "".join(traceback.format_exception(exc)),
            )
        )
        return
    channel.send(Ready(os.getpid()))
    while (request := channel.recv()) is not None:
        if isinstance(request, RunJob):
            channel.send(_run(app, app_path, channel, request))
        else:  # a worker of another release (the package replaced while it ran)
            channel.send(Refused("ProcessPoolError", f"the job's process was sent {request!r}"))


def _run(app: App, app_path: str, channel: _Channel, job: RunJob) -> Answer:
    """Run one job; the answer to send back."""
    name = job.task
    task = app.tasks.get(name)
    if task is None or task.fn is None:
        return Refused(
            "UnknownTask",
            f"no task named {name!r} in the app {app_path} as a new process imports it; "
            "register it at import time, in the app's module or in App(include=[...])",
        )
    try:
        args, kwargs = decode_call(app.serializer, job.payload)
    except Exception as exc:
        return Refused("PayloadError", f"cannot decode the job's payload: {exc}")
    context = _ChildContext(job.job_id, job.queue, name, job.attempt, _report=channel.send)
    token = _current.set(context)
    try:
        with attached(app.tracing, job.trace):
            result = within(app.job_scopes, task.fn, False)(*args, **kwargs)
    except Retry as exc:
        return Retried(exc.delay, _text(exc), "".join(traceback.format_exception(exc)))
    except BaseException as exc:  # whatever a job raises becomes its outcome
        return Raised(type(exc).__name__, _text(exc), "".join(traceback.format_exception(exc)))
    finally:
        _current.reset(token)
    try:
        data = app.serializer.dumps(result)
    except TypeError as exc:
        # The job ran and its effects happened: do not run it again.
        return Refused("ResultError", f"{name} returned a value that cannot be stored: {exc}")
    limit = app.max_result_bytes
    if limit is not None and len(data) > limit:  # said here: the bytes need not cross over
        return Refused("ResultTooLarge", str(ResultTooLarge(name, len(data), limit)))
    return Returned(data)


def _text(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return f"<{type(exc).__name__}: str() failed>"


def _exit_with_worker(sock: socket.socket) -> None:
    """Exit as soon as the worker's end of the socket closes, even mid-job: a
    worker that was killed must not leave its jobs running (they are recovered
    and run elsewhere). Linux (POLLRDHUP); elsewhere a child notices when it
    next reads, after its job."""
    rdhup = getattr(select, "POLLRDHUP", None)
    if rdhup is None:
        return

    def watch() -> None:
        poller = select.poll()
        poller.register(sock.fileno(), rdhup)
        while True:
            if poller.poll():  # data does not wake it: only a hang-up or an error
                os._exit(0)

    threading.Thread(target=watch, name="tarefa-watch-worker", daemon=True).start()
