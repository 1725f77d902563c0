"""Job handles: what a producer holds after enqueueing, to watch and steer a job."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import orjson

from .errors import JobCancelled, JobFailed, JobNotFound, TarefaError
from .serializer import load_error

if TYPE_CHECKING:
    from .app import App
    from .task import Task

R = TypeVar("R")


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


def _keep_ms(keep: object) -> int:
    if (
        isinstance(keep, bool)
        or not isinstance(keep, int | float)
        or not 1 <= keep <= 10 * 365 * 86400
    ):
        raise ValueError(f"keep must be a number of seconds from 1 to ten years, not {keep!r}")
    return int(keep * 1000)


def _check_timeout(timeout: object) -> None:
    if timeout is None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0:
        raise ValueError(f"timeout must be a number of seconds >= 0 or None, not {timeout!r}")


def _ms_to_datetime(raw: bytes | None) -> datetime | None:
    return datetime.fromtimestamp(int(raw) / 1000, UTC) if raw else None


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
    progress: dict | None  # the last reported: value, message, at (ms)
    key: str | None = None  # its lane (with_options(key=...))
    priority: int | None = None

    @classmethod
    def from_hash(cls, queue: str, job_id: str, raw: dict[str, bytes]) -> JobInfo:
        return cls(
            id=job_id,
            queue=queue,
            task=raw.get("task", b"").decode(),
            state=JobState(raw["state"].decode()),
            attempts=int(raw.get("attempts", 0)),
            stalls=int(raw.get("stalls", 0)),
            enqueued_at=_ms_to_datetime(raw.get("enqueued_at")),
            started_at=_ms_to_datetime(raw.get("started_at")),
            finished_at=_ms_to_datetime(raw.get("finished_at")),
            worker=raw["worker"].decode() if "worker" in raw else None,
            error=load_error(raw["error"]) if "error" in raw else None,
            progress=orjson.loads(raw["progress"]) if "progress" in raw else None,
            key=raw["key"].decode() if "key" in raw else None,
            priority=int(raw["priority"]) if "priority" in raw else None,
        )


class Job(Generic[R]):
    """A handle on one job. Cheap to make; every property reads Redis afresh."""

    __slots__ = ("app", "queue", "id", "created")

    def __init__(self, app: App, queue: str, job_id: str, *, created: bool = True):
        self.app = app
        self.queue = queue
        self.id = job_id
        self.created = created  # False when the id existed already (de-duplicated)

    def __repr__(self) -> str:
        return f"<Job {self.id} queue={self.queue}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and (other.queue, other.id) == (self.queue, self.id)

    def __hash__(self) -> int:
        return hash((self.queue, self.id))

    def info(self) -> JobInfo:
        raw = self.app.store.job(self.queue, self.id)
        if raw is None:
            raise JobNotFound(f"no job {self.id} in queue {self.queue!r}")
        return JobInfo.from_hash(self.queue, self.id, raw)

    async def ainfo(self) -> JobInfo:
        raw = await self.app.store.ajob(self.queue, self.id)
        if raw is None:
            raise JobNotFound(f"no job {self.id} in queue {self.queue!r}")
        return JobInfo.from_hash(self.queue, self.id, raw)

    @property
    def status(self) -> JobState:
        return self.info().state

    @property
    def attempts(self) -> int:
        return self.info().attempts

    def result(self, timeout: float | None = None) -> R:
        """Wait for the job to end and return its result.

        Raises ``JobFailed`` (with the remote error) if it failed,
        ``JobCancelled`` if cancelled, ``TimeoutError`` if it has not ended
        within ``timeout`` seconds (None: wait as long as it takes; 0: don't wait).
        """
        _check_timeout(timeout)
        self.app.store.wait(self.queue, self.id, timeout)
        return self._outcome(self.app.store.job(self.queue, self.id), timeout)

    async def aresult(self, timeout: float | None = None) -> R:
        _check_timeout(timeout)
        await self.app.store.await_(self.queue, self.id, timeout)
        return self._outcome(await self.app.store.ajob(self.queue, self.id), timeout)

    def _outcome(self, raw: dict[str, bytes] | None, timeout: float | None) -> R:
        if raw is None:
            raise JobNotFound(
                f"no job {self.id} in queue {self.queue!r} (never enqueued, deleted, "
                "or finished and its result no longer kept)"
            )
        state = JobState(raw["state"].decode())
        if state is JobState.COMPLETED:
            return self.app.serializer.loads(raw["result"])
        if state is JobState.FAILED:
            error = load_error(raw.get("error"))
            raise JobFailed(self.id, error["type"], error["message"], error.get("traceback", ""))
        if state is JobState.CANCELLED:
            raise JobCancelled(f"job {self.id} was cancelled")
        raise TimeoutError(f"job {self.id} has not finished within {timeout} s (it is {state})")

    def cancel(self, keep: float = 3600) -> bool:
        """Cancel the job unless it has ended: a queued or scheduled job never
        runs; a running one is stopped (async jobs within one heartbeat; a sync
        job sees ``current_job().cancelled``) and its outcome is discarded.
        Returns False when the job had already ended. Kept ``keep`` seconds."""
        reply = self.app.store.cancel(self.queue, self.id, _keep_ms(keep))
        return self._check_cancelled(reply)

    async def acancel(self, keep: float = 3600) -> bool:
        reply = await self.app.store.acancel(self.queue, self.id, _keep_ms(keep))
        return self._check_cancelled(reply)

    def _check_cancelled(self, reply: Any) -> bool:
        if reply == b"":
            raise JobNotFound(f"no job {self.id} in queue {self.queue!r}")
        return reply == 1

    def retry(self) -> None:
        """Run a failed job again (out of the dead-letter set), attempts reset."""
        self._check_retried(self.app.store.retry(self.queue, self.id))

    async def aretry(self) -> None:
        self._check_retried(await self.app.store.aretry(self.queue, self.id))

    def _check_retried(self, reply: Any) -> None:
        if reply == 1:
            return
        if reply == b"":
            raise JobNotFound(f"no job {self.id} in queue {self.queue!r}")
        raise TarefaError(f"only a failed job can be retried; job {self.id} is {reply.decode()}")

    def run_now(self) -> None:
        """Run a scheduled job (a delay or a retry's back-off) as soon as a
        worker is free, instead of at its time."""
        reply = self.app.store.run_now(self.queue, self.id)
        if reply == 1:
            return
        if reply == b"":
            raise JobNotFound(f"no job {self.id} in queue {self.queue!r}")
        raise TarefaError(f"only a scheduled job can run now; job {self.id} is {reply.decode()}")

    def delete(self) -> bool:
        """Delete the job, whatever its state (a running attempt is stopped and
        its outcome discarded). Jobs waiting for it are cancelled unless it had
        ended. Returns False when there was no such job."""
        return self.app.store.delete(self.queue, [self.id]) == 1

    def then(self, task: Task, *args: Any, **kwargs: Any) -> Job:
        """Enqueue ``task(*args, **kwargs)`` to run once this job has completed.
        If this job fails (retries exhausted) or is cancelled, that job is
        cancelled (with a DependencyFailed error), and so on down the chain."""
        return task.waiting_for([self]).enqueue(*args, **kwargs)

    async def athen(self, task: Task, *args: Any, **kwargs: Any) -> Job:
        return await task.waiting_for([self]).aenqueue(*args, **kwargs)

    @property
    def error(self) -> dict[str, Any] | None:
        return self.info().error

    @property
    def progress(self) -> dict[str, Any] | None:
        """The last progress the job reported: {"value", "message", "at"}."""
        return self.info().progress


class Group:
    """Jobs that a callback waits for: ``Group(jobs).then(merge, doc_id)`` runs
    ``merge(results, doc_id)`` once, after every job has completed, with their
    results in the jobs' order. If one fails (retries exhausted) or is
    cancelled, the callback is cancelled instead."""

    def __init__(self, jobs: Iterable[Job]):
        self.jobs = list(jobs)
        if not self.jobs or not all(isinstance(j, Job) for j in self.jobs):
            raise TypeError("a Group needs one or more Job handles")

    def __repr__(self) -> str:
        return f"<Group of {len(self.jobs)} jobs>"

    def then(self, task: Task, *args: Any, **kwargs: Any) -> Job:
        return task.waiting_for(self.jobs, takes_results=True).enqueue(*args, **kwargs)

    async def athen(self, task: Task, *args: Any, **kwargs: Any) -> Job:
        return await task.waiting_for(self.jobs, takes_results=True).aenqueue(*args, **kwargs)
