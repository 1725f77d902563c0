"""What the scripts answer, as Python values: the jobs a worker leases, what a
fetch reports, and small helpers for decoding."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(slots=True)
class Leased:
    """A job a worker has just leased."""

    id: str
    task: str
    payload: bytes
    attempts: int
    token: bytes  # the lease's fencing token, sent back with the outcome
    options: bytes  # JSON of per-call overrides of the task's options, or b''
    stalls: int = 0  # times a worker died while running it (not failures)
    parent_results: list[bytes | None] | None = None  # a group callback's inputs


@dataclass(slots=True)
class Fetched:
    jobs: list[Leased]
    stale: list[str]  # outcomes discarded: the lease had been taken over
    next_due_ms: int  # until the next scheduled job is due; -1: none
    active: int  # jobs leased in the queue, by any worker
    ended: list[tuple[str, str, list[str]]]  # (id, outcome, "queue|id" waiting for it)
    lost: list[str]  # ids in the queue whose job is gone (evicted): includes/lost.lua


def time_left(deadline: float | None) -> float | None:
    """Seconds until ``deadline`` for a blocking call (None: forever; 0: none left)."""
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    return max(left, 0.01) if left > 0.005 else 0


def parse_fetched(reply: list) -> Fetched:
    next_due, active, stale, flat, ended, lost = reply
    jobs = [
        Leased(
            id=flat[i].decode(),
            task=flat[i + 1].decode(),
            payload=flat[i + 2],
            attempts=flat[i + 3],
            token=flat[i + 4],
            options=flat[i + 5],
            stalls=flat[i + 6],
            parent_results=flat[i + 7] or None,
        )
        for i in range(0, len(flat), 8)
    ]
    stale_ids = [s.decode() for s in stale]
    return Fetched(jobs, stale_ids, next_due, active, parse_ended(ended), decode_list(lost))


def parse_ended(ended: list) -> list[tuple[str, str, list[str]]]:
    """Jobs that ended with jobs waiting for them: (id, outcome, "queue|id"s)."""
    return [(i.decode(), o.decode(), [r.decode() for r in refs]) for i, o, refs in ended]


def decode_hash(raw: dict[bytes, bytes]) -> dict[str, bytes]:
    return {k.decode(): v for k, v in raw.items()}


def decode_list(raw: list[bytes]) -> list[str]:
    return [item.decode() for item in raw]
