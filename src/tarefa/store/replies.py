"""What the scripts answer, read into records.py's records: the jobs a worker
leases, what a fetch reports, why a lease was lost, what a recovery did; and
small helpers for decoding."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Literal, overload

from redis.typing import ZSetRangeResponse

from ..records import (
    Added,
    Enqueued,
    Fetched,
    Leased,
    LeaseLoss,
    LostLease,
    RecoveredJob,
    Recovery,
)


def time_left(deadline: float | None) -> float | None:
    """Seconds until ``deadline`` for a blocking call (None: forever; 0: none left)."""
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    return max(left, 0.01) if left > 0.005 else 0


# A script's reply is a Lua value: an int, bytes, nil as None, or a list of
# these, its shape the script's own. A list that mixes kinds (ids and counts) is
# typed list[Any]; each item is read below as the script documents it.


def parse_fetched(reply: list[Any]) -> Fetched:
    next_due, active, stale, flat, ended, lost, recovered = reply
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
            trace=flat[i + 8],
        )
        for i in range(0, len(flat), 9)
    ]
    discarded = [
        (stale[i].decode(), LeaseLoss(stale[i + 1].decode())) for i in range(0, len(stale), 2)
    ]
    return Fetched(
        jobs, discarded, next_due, active, parse_ended(ended), decode_list(lost),
        parse_recovered(recovered),
    )  # fmt: skip


def parse_lost_leases(flat: list[bytes]) -> list[LostLease]:
    """A heartbeat's answer: id, token, why; 3 items each."""
    return [
        LostLease(flat[i].decode(), flat[i + 1], LeaseLoss(flat[i + 2].decode()))
        for i in range(0, len(flat), 3)
    ]


def parse_recovery(reply: list[Any]) -> Recovery:
    count, ended, lost, recovered = reply
    return Recovery(count, parse_ended(ended), decode_list(lost), parse_recovered(recovered))


def parse_recovered(flat: list[Any]) -> list[RecoveredJob]:
    """Jobs recovered: id, task, worker, stalls, 'queued' | 'failed'; 5 items each."""
    return [
        RecoveredJob(
            flat[i].decode(),
            flat[i + 1].decode(),
            flat[i + 2].decode(),
            flat[i + 3],
            flat[i + 4] == b"failed",
        )  # fmt: skip
        for i in range(0, len(flat), 5)
    ]


def parse_ended(ended: list[list[Any]]) -> list[tuple[str, str, list[str]]]:
    """Jobs that ended with jobs waiting for them: (id, outcome, "queue|id"s)."""
    return [(i.decode(), o.decode(), [r.decode() for r in refs]) for i, o, refs in ended]


def decode_hash(raw: dict[bytes, bytes]) -> dict[str, bytes]:
    return {k.decode(): v for k, v in raw.items()}


def decode_list(raw: list[bytes]) -> list[str]:
    return [item.decode() for item in raw]


def enqueued(job_id: str, reply: Literal[1] | bytes | list[bytes]) -> Enqueued:
    """enqueue.lua's reply: 1 when it added the job; the state of the job
    holding the id; or [id, state] of the job a window kept."""
    if isinstance(reply, list):
        return Enqueued(Added.KEPT, reply[0].decode(), reply[1].decode() or None)
    if reply == 1:
        return Enqueued(Added.CREATED, job_id)
    return Enqueued(Added.EXISTING, job_id, reply.decode())


def enqueued_many(
    job_ids: Sequence[str], replies: list[Literal[1] | bytes | list[bytes]]
) -> list[Enqueued]:
    """enqueue_many.lua's reply: one of enqueue.lua's per job (no windows)."""
    return [enqueued(job_id, reply) for job_id, reply in zip(job_ids, replies, strict=True)]


# What redis-py's commands answer, as tarefa's clients get it. They never decode
# replies (no decode_responses), so Redis's strings come back as bytes, where
# redis-py's types allow str too; and tarefa never asks ZRANGE for scores.


@overload
def undecoded(reply: dict[bytes | str, bytes | str]) -> dict[bytes, bytes]: ...
@overload
def undecoded(reply: set[bytes | str]) -> set[bytes]: ...
@overload
def undecoded(reply: ZSetRangeResponse) -> list[bytes]: ...
@overload
def undecoded(reply: list[bytes | str | None]) -> list[bytes | None]: ...
@overload
def undecoded(reply: bytes | str | None) -> bytes | None: ...
def undecoded(reply: object) -> object:
    """A command's reply, typed as it comes: strings as bytes (HGETALL,
    SMEMBERS, HMGET, LRANGE, ZRANGE without scores, LINDEX)."""
    return reply
