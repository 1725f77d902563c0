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
from dataclasses import dataclass
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
