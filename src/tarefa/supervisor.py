"""``tarefa worker -p N``: one parent process that keeps N worker processes
running, and stops them.

The parent, the supervisor, has imported the app once, and forks each worker
process from itself, so the app's code and data are shared copy-on-write.
When it forks it holds no Redis connection (it never talks to Redis) and runs
no thread (it only waits, for signals and its children), so a child starts
with no connection it shares with another and no lock some thread held; it
builds its own ``Worker``, clients and threads. (redis-py's pools and the
store's per-thread connections would start afresh in a child anyway: they
compare the pid.)

- A child that dies is replaced. One that dies soon after it started (a crash
  loop: Redis refusing the credentials, a metrics port taken) is replaced
  after a delay that doubles with each such death, ``FIRST_DELAY`` up to
  ``MAX_DELAY``, per process; one that lived ``STEADY_AFTER`` seconds is
  replaced at once and the delay starts over. A child that exits 0 (it
  retired after ``--max-jobs-per-process``) is replaced at once; one that
  exits ``FINISHED`` (a burst worker found its queues empty) is not.
- SIGTERM or SIGINT: SIGTERM to every child, which stops as a single worker
  does (stops fetching, its running jobs get the grace period, the rest is
  handed back), and the supervisor exits 0 once all have ended cleanly. A
  child still running ``KILL_MARGIN`` seconds past the grace period is
  SIGKILLed (its jobs' leases run out and other workers recover them). A
  second signal passes SIGTERM on again: to a worker, a second SIGTERM means
  stop now; a child still running ``KILL_MARGIN`` seconds after it is
  SIGKILLed.
- Children run in a process group of their own, so a Ctrl-C at a terminal
  reaches the supervisor alone: a child that got the terminal's SIGINT and
  then the supervisor's SIGTERM would take the second for "stop now".
- No orphans (Linux): each child asks the kernel for SIGTERM when the
  supervisor dies, even by SIGKILL (``PR_SET_PDEATHSIG``), and so drains and
  exits as on SIGTERM. Elsewhere a child outlives a killed supervisor.

Signals reach the supervisor's loop as bytes on a pipe (``_Wakeups``), so
nothing runs inside a signal handler, and around each fork they are blocked:
one sent to a new child before it has put its own handlers in place waits
for them.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import Any, NoReturn

log = logging.getLogger("tarefa.supervisor")

FIRST_DELAY = 1.0  # seconds before replacing a child that died soon after it started
MAX_DELAY = 30.0  # the delay doubles with each such death, up to this
STEADY_AFTER = 30.0  # seconds a child lives to count as no crash loop (its delay starts over)
KILL_MARGIN = 30.0  # seconds past the grace period a stopping child gets before SIGKILL
# (a worker takes at most about grace + 20 s, even with Redis away: shutdown.py, worker.py)

# A child's exit status: its work is done (a burst worker found its queues
# empty), so its place is not filled again. 0 is a child that retired (or
# was stopped by a signal of its own): replaced.
FINISHED = 100

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_WAKE_SIGNALS = (*STOP_SIGNALS, signal.SIGCHLD)
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def cpu_count() -> int:
    """``-p auto``: the CPUs this process may use (``os.process_cpu_count``,
    Python 3.13+), else the machine's."""
    count: Callable[[], int | None] = getattr(os, "process_cpu_count", os.cpu_count)
    return count() or 1


@dataclass
class _Slot:
    """One of the N worker processes: the child filling it now, if any, and
    when to start the next one."""

    number: int  # 1 to N
    pid: int | None = None
    born: float = 0.0  # monotonic: when the current child started
    delay: float = 0.0  # the back-off the last quick death set
    start_at: float = 0.0  # monotonic: when to start the next child
    finished: bool = False  # its child's work is done (FINISHED): not filled again


class Supervisor:
    """Runs ``child(number)`` (its exit status) in ``processes`` forked
    children, numbered 1 to N, until SIGTERM or SIGINT, or, for burst
    workers, until each has finished. ``grace``: the workers' own grace
    period, which the supervisor waits out (plus ``KILL_MARGIN``)."""

    def __init__(self, processes: int, child: Callable[[int], int], *, grace: float) -> None:
        self.slots = [_Slot(number) for number in range(1, processes + 1)]
        self.child = child
        self.grace = grace
        self.stopping = False  # a signal came: children are stopping, none starts
        self.kill_at = math.inf  # monotonic: SIGKILL the children still alive then
        self.clean = True  # every child ended cleanly once told to stop
        self._pid = os.getpid()
        self._wakeups = _Wakeups()

    def run(self) -> int:
        """Supervise until done; the exit status: 0 if every child ended cleanly."""
        _warn_of_threads()
        log.info("supervising %d worker processes (pid %d)", len(self.slots), self._pid)
        with self._wakeups:
            while not self._done():
                self._start_due()
                for signum in self._wakeups.wait(self._timeout()):
                    self._on_signal(signum)
                self._reap()
                self._kill_overdue()
        if self.stopping:
            how = "" if self.clean else " (not all cleanly)"
            log.info("all worker processes have exited%s", how)
        else:
            log.info("every worker process has finished its work: exiting")
        return 0 if self.clean else 1

    # -- the loop -----------------------------------------------------------------

    def _done(self) -> bool:
        if self.stopping:
            return all(slot.pid is None for slot in self.slots)
        return all(slot.finished for slot in self.slots)

    def _timeout(self) -> float:
        """Until the next thing to do: a start, a kill. At most a second, a
        safety net: a missed wake-up costs a second, not a hang."""
        due = [self.kill_at] if self.stopping else [s.start_at for s in self._empty()]
        return max(0.0, min(1.0, min(due, default=math.inf) - time.monotonic()))

    def _empty(self) -> list[_Slot]:
        return [s for s in self.slots if s.pid is None and not s.finished]

    def _start_due(self) -> None:
        if self.stopping:
            return
        now = time.monotonic()
        for slot in self._empty():
            if now >= slot.start_at:
                self._start(slot)

    def _on_signal(self, signum: int) -> None:
        if signum not in STOP_SIGNALS:
            return  # SIGCHLD: the loop reaps next
        name = signal.Signals(signum).name
        if not self.stopping:
            self.stopping = True
            self.kill_at = time.monotonic() + self.grace + KILL_MARGIN
            log.info(
                "%s: stopping the worker processes (they finish running jobs, up to %g s)",
                name, self.grace,
            )  # fmt: skip
        else:  # a worker's second SIGTERM cuts its grace short: so does the deadline
            self.kill_at = min(self.kill_at, time.monotonic() + KILL_MARGIN)
            log.warning("%s again: telling the worker processes to stop now", name)
        self._signal_children(signal.SIGTERM)

    def _reap(self) -> None:
        for slot in self.slots:
            if slot.pid is None:
                continue
            pid, status = os.waitpid(slot.pid, os.WNOHANG)
            if pid != 0:
                self._ended(slot, os.waitstatus_to_exitcode(status))

    def _kill_overdue(self) -> None:
        if not self.stopping or time.monotonic() < self.kill_at:
            return
        self.kill_at = math.inf  # once: the loop reaps them next
        for slot in self.slots:
            if slot.pid is not None:
                log.warning(
                    "worker process %d (pid %d) still runs %g s after the grace period: "
                    "killing it (SIGKILL); its jobs' leases run out and other workers recover "
                    "them", slot.number, slot.pid, KILL_MARGIN,
                )  # fmt: skip
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.pid, signal.SIGKILL)

    def _signal_children(self, signum: int) -> None:
        for slot in self.slots:
            if slot.pid is not None:
                with contextlib.suppress(ProcessLookupError):  # (a zombie is still there)
                    os.kill(slot.pid, signum)

    # -- a child's end --------------------------------------------------------------

    def _ended(self, slot: _Slot, code: int) -> None:
        pid, lived, slot.pid = slot.pid, time.monotonic() - slot.born, None
        how = f"worker process {slot.number} (pid {pid}) {_describe(code)} after {lived:.1f} s"
        if self.stopping:
            # SIGTERM is what it was sent: one that arrives once the worker's
            # own handlers are gone (it had stopped already) ends it so.
            clean = code in (0, FINISHED, -signal.SIGTERM)
            self.clean = self.clean and clean
            log.log(logging.INFO if clean else logging.WARNING, "%s", how)
        elif code == FINISHED:
            slot.finished = True
            log.info("%s: its work is done, not replaced", how)
        elif code == 0 or lived >= STEADY_AFTER:
            slot.delay, slot.start_at = 0.0, time.monotonic()
            log.log(logging.INFO if code == 0 else logging.WARNING, "%s: replacing it", how)
        else:
            self._back_off(slot, f"{how}, soon after it started")

    def _back_off(self, slot: _Slot, what: str) -> None:
        slot.delay = min(MAX_DELAY, slot.delay * 2 or FIRST_DELAY)
        slot.start_at = time.monotonic() + slot.delay
        log.warning(
            "%s: replacing it in %g s (the delay doubles while that goes on, up to %g s)",
            what, slot.delay, MAX_DELAY,
        )  # fmt: skip

    # -- a child's start ------------------------------------------------------------

    def _start(self, slot: _Slot) -> None:
        with _blocked(_WAKE_SIGNALS):
            try:
                pid = os.fork()
            except OSError as exc:  # out of memory, or of processes
                self._back_off(slot, f"worker process {slot.number} could not start: {exc}")
                return
            if pid == 0:
                self._be_child(slot.number)
        slot.pid, slot.born = pid, time.monotonic()
        log.info("worker process %d started: pid %d", slot.number, pid)

    def _be_child(self, number: int) -> NoReturn:
        """In the child: leave the supervisor's signal set-up behind, run
        ``child``, and exit with its status, never returning into the
        supervisor's code."""
        code = 1
        try:
            self._wakeups.leave()
            os.setpgid(0, 0)  # a terminal's Ctrl-C reaches the supervisor alone
            for signum in STOP_SIGNALS:
                signal.signal(signum, _stop_before_start)
            _end_with_parent(self._pid)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _WAKE_SIGNALS)
            code = self.child(number)
        except _StoppedBeforeStart as stopped:
            log.info("worker process %d: %s before the worker started: exiting", number, stopped)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        except BaseException:
            log.exception("worker process %d failed", number)
        finally:
            for signum in STOP_SIGNALS:  # it has stopped: a late signal changes nothing
                signal.signal(signum, signal.SIG_IGN)
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)


def _describe(code: int) -> str:
    if code == 0:
        return "exited cleanly"
    if code == FINISHED:
        return "finished"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:  # a real-time signal: no name of its own
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _warn_of_threads() -> None:
    others = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if others:
        log.warning(
            "threads run in the supervisor (%s), started as the app was imported: the worker "
            "processes forked from it have none of them", ", ".join(others),
        )  # fmt: skip


class _StoppedBeforeStart(BaseException):
    """SIGTERM or SIGINT in a child before its worker's handlers were in place."""


def _stop_before_start(signum: int, frame: FrameType | None) -> None:
    raise _StoppedBeforeStart(signal.Signals(signum).name)


def _end_with_parent(parent: int) -> None:
    """Have the kernel send SIGTERM to this child when the supervisor dies,
    even by SIGKILL (Linux), so that it drains and exits rather than run on,
    an orphan. A supervisor that died before that was in place is seen here."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            log.warning("PR_SET_PDEATHSIG failed: %s", os.strerror(ctypes.get_errno()))
    if os.getppid() != parent:
        raise _StoppedBeforeStart("the supervisor had exited")


@contextlib.contextmanager
def _blocked(signals: tuple[signal.Signals, ...]) -> Iterator[None]:
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _ignore(signum: int, frame: FrameType | None) -> None:
    """A handler that does nothing: with one in place, Python writes the
    signal's number to the wake-up pipe, and the loop acts on it."""


class _Wakeups:
    """SIGTERM, SIGINT and SIGCHLD as bytes on a pipe (``signal.set_wakeup_fd``),
    which the loop waits on with a timeout (``wait``)."""

    def __init__(self) -> None:
        self._read = self._write = -1
        self._handlers: dict[signal.Signals, Any] = {}
        self._previous_fd = -1

    def __enter__(self) -> _Wakeups:
        self._read, self._write = os.pipe()
        for fd in (self._read, self._write):
            os.set_blocking(fd, False)
        self._handlers = {signum: signal.signal(signum, _ignore) for signum in _WAKE_SIGNALS}
        self._previous_fd = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        return self

    def wait(self, timeout: float) -> list[int]:
        """The signals that came within ``timeout`` seconds (none: it passed)."""
        ready, _, _ = select.select([self._read], [], [], timeout)
        if not ready:
            return []
        try:
            return list(os.read(self._read, 512))
        except BlockingIOError:
            return []

    def leave(self) -> None:
        """In a forked child: none of this is its own."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.close(self._read)
        os.close(self._write)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        signal.set_wakeup_fd(self._previous_fd)
        for signum, handler in self._handlers.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        os.close(self._read)
        os.close(self._write)
