"""Job handles: what a producer holds after enqueueing, to watch and steer a job."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from .errors import JobCancelled, JobFailed, JobNotFound
from .records import JobInfo, JobState, StoredJob

if TYPE_CHECKING:
    from .backend import Owner

# A job's result type. Only ever returned, so covariant: a Job[int] is a
# Job[object], which is how "any job" is spelled.
R_co = TypeVar("R_co", covariant=True)
# The result of the job that then() enqueues.
R_then = TypeVar("R_then")


class Follower(Protocol[R_co]):
    """A task as a job handle sees it: one that can run after jobs (a Task,
    which imports this module; so this one names only what it calls)."""

    def waiting_for(
        self, jobs: Iterable[Job[object]], *, takes_results: bool = False
    ) -> Follower[R_co]: ...

    def enqueue(self, *args: Any, **kwargs: Any) -> Job[R_co]: ...

    async def aenqueue(self, *args: Any, **kwargs: Any) -> Job[R_co]: ...


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


class Job(Generic[R_co]):
    """A handle on one job. Cheap to make; every property reads Redis afresh."""

    __slots__ = ("app", "queue", "id", "created")

    def __init__(self, app: Owner, queue: str, job_id: str, *, created: bool = True):
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
        return self._found(self.app.backend.job(self.queue, self.id)).info

    async def ainfo(self) -> JobInfo:
        return self._found(await self.app.backend.ajob(self.queue, self.id)).info

    def _found(self, stored: StoredJob | None) -> StoredJob:
        if stored is None:
            raise JobNotFound(f"no job {self.id} in queue {self.queue!r}")
        return stored

    @property
    def status(self) -> JobState:
        return self.info().state

    @property
    def attempts(self) -> int:
        return self.info().attempts

    def result(self, timeout: float | None = None) -> R_co:
        """Wait for the job to end and return its result.

        Raises ``JobFailed`` (with the remote error) if it failed,
        ``JobCancelled`` if cancelled, ``TimeoutError`` if it has not ended
        within ``timeout`` seconds (None: wait as long as it takes; 0: don't wait).
        """
        _check_timeout(timeout)
        self.app.backend.wait_end(self.queue, self.id, timeout)
        return self._outcome(self.app.backend.job(self.queue, self.id), timeout)

    async def aresult(self, timeout: float | None = None) -> R_co:
        _check_timeout(timeout)
        await self.app.backend.await_end(self.queue, self.id, timeout)
        return self._outcome(await self.app.backend.ajob(self.queue, self.id), timeout)

    def _outcome(self, stored: StoredJob | None, timeout: float | None) -> R_co:
        if stored is None:
            raise JobNotFound(
                f"no job {self.id} in queue {self.queue!r} (never enqueued, deleted, "
                "or finished and its result no longer kept)"
            )
        state = stored.info.state
        if state is JobState.COMPLETED:
            result: R_co = self.app.serializer.loads(stored.result or b"")
            return result
        if state is JobState.FAILED:
            error = stored.info.error or {"type": "Error", "message": ""}
            raise JobFailed(self.id, error["type"], error["message"], error.get("traceback", ""))
        if state is JobState.CANCELLED:
            raise JobCancelled(f"job {self.id} was cancelled")
        raise TimeoutError(f"job {self.id} has not finished within {timeout} s (it is {state})")

    def cancel(self, keep: float = 3600) -> bool:
        """Cancel the job unless it has ended: a queued or scheduled job never
        runs; a running one is stopped (async jobs within one heartbeat; a sync
        job sees ``current_job().cancelled``) and its outcome is discarded.
        Returns False when the job had already ended. Kept ``keep`` seconds."""
        return self.app.backend.cancel(self.queue, self.id, _keep_ms(keep))

    async def acancel(self, keep: float = 3600) -> bool:
        return await self.app.backend.acancel(self.queue, self.id, _keep_ms(keep))

    def retry(self) -> None:
        """Run a failed job again (out of the dead-letter set), attempts reset.
        ``WrongState`` if it has not failed."""
        self.app.backend.retry(self.queue, self.id)

    async def aretry(self) -> None:
        await self.app.backend.aretry(self.queue, self.id)

    def run_now(self) -> None:
        """Run a scheduled job (a delay or a retry's back-off) as soon as a
        worker is free, instead of at its time. ``WrongState`` if it is not
        scheduled."""
        self.app.backend.run_now(self.queue, self.id)

    def delete(self) -> bool:
        """Delete the job, whatever its state (a running attempt is stopped and
        its outcome discarded). Jobs waiting for it are cancelled unless it had
        ended. Returns False when there was no such job."""
        return self.app.backend.delete(self.queue, [self.id]) == 1

    def then(self, task: Follower[R_then], *args: Any, **kwargs: Any) -> Job[R_then]:
        """Enqueue ``task(*args, **kwargs)`` to run once this job has completed.
        If this job fails (retries exhausted) or is cancelled, that job is
        cancelled (with a DependencyFailed error), and so on down the chain."""
        return task.waiting_for([self]).enqueue(*args, **kwargs)

    async def athen(self, task: Follower[R_then], *args: Any, **kwargs: Any) -> Job[R_then]:
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

    def __init__(self, jobs: Iterable[Job[object]]):
        self.jobs = list(jobs)
        if not self.jobs or not all(isinstance(j, Job) for j in self.jobs):
            raise TypeError("a Group needs one or more Job handles")

    def __repr__(self) -> str:
        return f"<Group of {len(self.jobs)} jobs>"

    def then(self, task: Follower[R_then], *args: Any, **kwargs: Any) -> Job[R_then]:
        return task.waiting_for(self.jobs, takes_results=True).enqueue(*args, **kwargs)

    async def athen(self, task: Follower[R_then], *args: Any, **kwargs: Any) -> Job[R_then]:
        return await task.waiting_for(self.jobs, takes_results=True).aenqueue(*args, **kwargs)
