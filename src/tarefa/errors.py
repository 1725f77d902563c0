"""The exceptions tarefa raises, and the one a job raises to ask for a retry."""

from __future__ import annotations


class TarefaError(Exception):
    """Base class of tarefa's own errors."""


class JobNotFound(TarefaError, LookupError):
    """No job with this id exists (never enqueued, deleted, or its result expired)."""


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


class Retry(Exception):  # noqa: N818 - raised by user code as `raise Retry(delay=5)`
    """Raise inside a job to run it again after ``delay`` seconds (default: the
    task's back-off). Counts as an attempt, so ``retries`` bounds it."""

    def __init__(self, delay: float | None = None, reason: str = ""):
        self.delay = delay
        self.reason = reason
        super().__init__(reason or f"retry requested (delay={delay})")
