"""A process's state as Linux shows it in /proc/PID/stat."""

from __future__ import annotations

from pathlib import Path


def state(pid: int) -> str | None:
    """Its state letter (R running, S sleeping, T stopped, Z zombie, ...), None
    once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rpartition(")")[2].split()[0]  # after the name, which may hold spaces


def alive(pid: int) -> bool:
    """Running: not gone, nor exited and waiting to be reaped (a zombie)."""
    return state(pid) not in (None, "Z", "X")


def stopped(pid: int) -> bool:
    """Stopped by a signal (a SIGSTOP just sent may still be pending)."""
    return state(pid) == "T"
