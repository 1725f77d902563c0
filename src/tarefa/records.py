"""tarefa's records: the typed values that cross the boundary between the
code that speaks Redis (``store/``) and the rest, and those that travel
between the worker's parts. The store returns these, never bytes, reply codes
or key names; an attempt's outcome goes from the job's run to the fetch that
reports it as an ``Outcome``, never a tuple.

A pure leaf, like errors.py: it imports nothing of tarefa, so every layer can
use it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class JobState(enum.StrEnum):
    QUEUED = "queued"  # ready to run
    SCHEDULED = "scheduled"  # waiting for a time: a delay or a retry's back-off
    ACTIVE = "active"  # leased by one worker, running
    WAITING = "waiting"  # for other jobs to complete (Job.then, Group, depends_on)
    COMPLETED = "completed"
    FAILED = "failed"  # retries exhausted: in the dead-letter set
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)


@dataclass(frozen=True)
class JobInfo:
    """A snapshot of one job, as stored."""

    id: str
    queue: str
    task: str
    state: JobState
    attempts: int
    stalls: int
    enqueued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    worker: str | None
    error: dict[str, str] | None  # type, message, traceback of the last failure
    progress: dict[str, Any] | None  # the last reported: value, message, at (ms)
    key: str | None = None  # its lane (with_options(key=...))
    priority: int | None = None


@dataclass(frozen=True)
class StoredJob:
    """Everything stored about one job: its summary, and the values kept
    with it as they were written (the serializer's bytes; JSON for options
    and parents). A completed job keeps no payload, options or parents."""

    info: JobInfo
    payload: bytes | None  # [args, kwargs]
    result: bytes | None
    options: bytes | None  # per-call option overrides
    parents: bytes | None  # the jobs it waited for
    enqueued_at_ms: int | None
    ready_at_ms: int | None  # when a delay, back-off or retry ended


class Added(enum.Enum):
    """What one enqueue did."""

    CREATED = "created"  # the job was made
    EXISTING = "existing"  # its id was held by a job already: nothing added
    KEPT = "kept"  # a throttle or debounce window kept another job instead


@dataclass(frozen=True)
class Enqueued:
    """The answer to one enqueue: what it did, the job the caller's handle is
    for (the one a window ``KEPT``, when it did), and that job's state when it
    was not created."""

    added: Added
    job_id: str
    state: str | None = None


class OutcomeKind(enum.StrEnum):
    """How an attempt ended; the value is what fetch.lua is told."""

    COMPLETED = "completed"
    RETRY = "retry"  # it failed and runs again after ``ms``
    FAILED = "failed"  # for good: to the dead-letter set


FOREVER = -1  # the ``ms`` of a completed outcome whose result is kept forever


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an attempt came to, as the worker decides it (worker/execution.py)."""

    kind: OutcomeKind
    value: bytes  # the serialized result, or the error as JSON
    ms: int  # completed: how long to keep the result (FOREVER); retry: its back-off
    # For the log, not for Redis: the exception raised in this process (its
    # traceback for the log's handlers), and how many attempts the job may
    # have in all (0: not known).
    error: BaseException | None = None
    allowed: int = 0

    def of(self, job_id: str, token: bytes) -> AttemptOutcome:
        """This outcome, for the attempt that holds the lease ``token``."""
        return AttemptOutcome(job_id, token, self)


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """The outcome of one attempt (a job's id and its lease's token), held
    until a fetch reports it to Redis."""

    job_id: str
    token: bytes
    outcome: Outcome

    @property
    def completed(self) -> bool:
        return self.outcome.kind is OutcomeKind.COMPLETED


# -- what a worker leases and is told ---------------------------------------------


class LeaseLoss(enum.Enum):
    """Why an attempt no longer holds its job (``includes/lease_lost.lua``),
    as Redis saw it when it found the lease lost. The value is what the
    scripts answer; ``because`` says it in words."""

    DELETED = "deleted"
    CANCELLED = "cancelled"
    TAKEN_OVER = "taken_over"
    RECORDED = "recorded"

    @property
    def because(self) -> str:
        return _BECAUSE[self]


_BECAUSE = {
    LeaseLoss.DELETED: "the job was deleted",
    LeaseLoss.CANCELLED: "the job was cancelled",
    LeaseLoss.TAKEN_OVER: (
        "its lease had run out and the job was taken over (recovered to run again, or replaced)"
    ),
    LeaseLoss.RECORDED: "this outcome had been recorded already (a report sent again)",
}


@dataclass(frozen=True, slots=True)
class LostLease:
    """An attempt whose lease its worker no longer holds (a heartbeat's answer),
    or whose outcome was discarded (a fetch's)."""

    job_id: str
    token: bytes
    reason: LeaseLoss


@dataclass(frozen=True, slots=True)
class RecoveredJob:
    """A job whose lease expired (its worker stopped renewing it), recovered."""

    job_id: str
    task: str
    worker: str  # the worker that held the lease
    stalls: int  # times its worker stopped, this one included
    failed: bool  # stalled more than max_stalls times: failed, not back to ready


@dataclass(slots=True)
class Recovery:
    """What ``recover.lua`` did."""

    count: int  # leases that expired
    ended: list[tuple[str, str, list[str]]]  # as Fetched.ended
    lost: list[str]  # as Fetched.lost
    jobs: list[RecoveredJob] = field(default_factory=list)


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
    trace: bytes | None = None  # the context of the span that enqueued it (tracing.py)


@dataclass(slots=True)
class Fetched:
    jobs: list[Leased]
    discarded: list[tuple[str, LeaseLoss]]  # outcomes not recorded: job id, why
    next_due_ms: int  # until the next scheduled job is due; -1: none
    active: int  # jobs leased in the queue, by any worker
    ended: list[tuple[str, str, list[str]]]  # (id, outcome, "queue|id" waiting for it)
    lost: list[str]  # ids in the queue whose job is gone (evicted): includes/lost.lua
    recovered: list[RecoveredJob] = field(default_factory=list)  # expired leases it recovered

    @property
    def stale(self) -> list[str]:
        """The ids of the outcomes discarded."""
        return [job_id for job_id, _ in self.discarded]
