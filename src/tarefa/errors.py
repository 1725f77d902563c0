"""The exceptions tarefa raises, and the one a job raises to ask for a retry.

A pure leaf: it imports nothing of tarefa, so every layer (the store too) can
raise these. Errors about reaching Redis also subclass redis-py's own
(``redis.ConnectionError``, ``redis.TimeoutError``, ``redis.OutOfMemoryError``),
so code that caught those before keeps working.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError as RedisOutOfMemoryError
from redis.exceptions import TimeoutError as RedisTimeoutError


class TarefaError(Exception):
    """Base class of tarefa's own errors."""


class AppImportError(TarefaError):
    """The app's module was found but importing it failed: a module it
    imports is missing (``missing``: its name; ``chain``: the modules being
    imported, outermost first), or its code raised (``__cause__``)."""

    def __init__(self, message: str, missing: str | None = None, chain: Sequence[str] = ()):
        super().__init__(message)
        self.missing = missing
        self.chain = list(chain)


class JobNotFound(TarefaError, LookupError):
    """No job with this id exists (never enqueued, deleted, or its result expired)."""


class AmbiguousJob(TarefaError, LookupError):
    """A job id given without its queue that more than one queue holds: ids
    are unique per queue, not across queues. ``queues`` names them."""

    def __init__(self, job_id: str, queues: Sequence[str]):
        self.queues = list(queues)
        listed = ", ".join(repr(q) for q in queues)
        super().__init__(
            f"job {job_id!r} is in {len(queues)} queues ({listed}): say which one "
            "(queue= in Python, --queue in the command line, ?queue= in the REST API)"
        )


class WrongState(TarefaError):
    """A change that the job's state does not allow (a retry of a job that has
    not failed, run-now of one that is not scheduled); ``state`` is its state."""

    def __init__(self, message: str, state: str):
        super().__init__(message)
        self.state = state


class JobFailed(TarefaError):
    """The job ended in failure; carries the remote exception's type, message
    and traceback text."""

    def __init__(self, job_id: str, error_type: str, message: str, traceback: str = ""):
        self.job_id = job_id
        self.error_type = error_type
        self.message = message
        self.traceback = traceback
        super().__init__(f"job {job_id} failed: {error_type}: {message}")


class JobCancelled(TarefaError):
    """The job was cancelled before it finished."""


class PayloadTooLarge(ValueError, TarefaError):
    """A job's serialized arguments are over the App's ``max_payload_bytes``.
    Raised at the caller, before anything is sent: nothing was enqueued."""

    def __init__(self, task: str, size: int, limit: int, where: str = ""):
        self.task, self.size, self.limit = task, size, limit
        super().__init__(
            f"{task}: the job's arguments are {size:,} bytes serialized{where}, over the "
            f"limit of {limit:,}: nothing was enqueued. Pass a reference to the data (an id, "
            "a URL, a path) rather than the data itself, or raise the limit with "
            "App(max_payload_bytes=N) (None: no limit)"
        )


class ResultTooLarge(ValueError, TarefaError):
    """A job returned a result over the App's ``max_result_bytes`` once
    serialized. The attempt fails and is not retried (it would return as
    much again); nothing of the result is stored. The job's error says so,
    with the size and the limit; ``on_failure`` hooks get this exception."""

    def __init__(self, task: str, size: int, limit: int):
        self.task, self.size, self.limit = task, size, limit
        super().__init__(
            f"{task} returned a result of {size:,} bytes serialized, over the limit of "
            f"{limit:,}: it was not stored, and the job is not retried (it would return as "
            "much again). Keep large data in your database or object store and return a "
            "reference to it, or raise the limit with App(max_result_bytes=N) (None: no limit)"
        )


class BackendUnavailable(RedisConnectionError, TarefaError):
    """Where jobs are kept could not be reached, or did not answer in time,
    and the retries ran out: the backend contract's error (backend.py), which
    a caller catches whatever the backend. The Redis backend raises
    ``RedisUnavailable``, one of these. Also a ``redis.ConnectionError``, as
    callers caught before.

    ``job_ids`` holds the ids whose fate is unknown (one, ``job_id``, for an
    enqueue)."""

    def __init__(self, message: str, job_ids: Sequence[str] = ()):
        self.job_ids = list(job_ids)
        super().__init__(message)

    @property
    def job_id(self) -> str | None:
        """The job's id, for one enqueue (the first of a batch's)."""
        return self.job_ids[0] if self.job_ids else None


class RedisUnavailable(BackendUnavailable):
    """An enqueue could not reach Redis, or Redis did not answer in time, and
    its retries ran out. Nothing was kept in memory to send later.

    The job may or may not have been enqueued (Redis may have received it just
    before the connection failed, or run it late, once it recovers). Enqueueing
    it again with the same id is safe: an id that exists adds nothing. When
    the last attempt timed out, a ``RedisTimedOut``, also a
    ``redis.TimeoutError``."""


class RedisTimedOut(RedisUnavailable, RedisTimeoutError):
    """``RedisUnavailable`` whose last attempt timed out: Redis took the
    connection but did not answer (a hung or overloaded server, a partition)."""


class RedisFull(RedisOutOfMemoryError, TarefaError):
    """Redis refused an enqueue because its memory is full (``maxmemory``
    reached, with ``maxmemory-policy noeviction``). Nothing of the refused
    jobs was written: enqueueing them again with the same ids, once workers
    have drained some jobs or ``maxmemory`` was raised, makes each once.

    ``queue`` is the queue, ``job_ids`` the ids refused (one, ``job_id``, for
    an enqueue). Also a ``redis.OutOfMemoryError`` (a ``redis.ResponseError``),
    what the enqueue raised before, on Redis 7 (Redis 6.2 refused it as a
    plain ``redis.ResponseError``)."""

    def __init__(self, message: str, queue: str, job_ids: Sequence[str] = ()):
        self.queue = queue
        self.job_ids = list(job_ids)
        super().__init__(message)

    @property
    def job_id(self) -> str | None:
        """The job's id, for one enqueue (the first of a batch's)."""
        return self.job_ids[0] if self.job_ids else None


class NotDurable(TarefaError):
    """A ``durable`` enqueue added its job, but Redis could not confirm that
    the write reached its disk (no append-only file, or no fsync in time): a
    crash of the Redis machine now could lose it. ``job_ids`` holds the jobs
    concerned (one, ``job_id``, for an enqueue); ``jobs`` the handles of every
    job the call enqueued, as the call would have returned them."""

    def __init__(self, message: str, job_ids: Sequence[str], reason: str = ""):
        self.job_ids = list(job_ids)
        self.reason = reason or message  # why, without which jobs
        self.jobs: list[Any] = []
        self.reply: Any = None  # what the enqueue did: an Enqueued (a list of them for a batch)
        super().__init__(message)

    @property
    def job_id(self) -> str | None:
        return self.job_ids[0] if self.job_ids else None


class DurableUnsupported(TarefaError):
    """``durable`` was asked of a Redis without WAITAOF (older than 7.2).
    Raised before anything is sent: nothing was enqueued."""


class Retry(Exception):  # noqa: N818 - raised by user code as `raise Retry(delay=5)`
    """Raise inside a job to run it again after ``delay`` seconds (default: the
    task's back-off). Counts as an attempt, so ``retries`` bounds it."""

    def __init__(self, delay: float | None = None, reason: str = ""):
        self.delay = delay
        self.reason = reason
        super().__init__(reason or f"retry requested (delay={delay})")
