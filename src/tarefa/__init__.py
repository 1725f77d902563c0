"""tarefa: a background job queue for Python on Redis."""

from . import testing  # noqa: F401 - registers testing mode's backend (App(testing=True))
from .app import App, Queue
from .context import JobContext, current_job
from .errors import (
    AmbiguousJob,
    BackendUnavailable,
    DurableUnsupported,
    JobCancelled,
    JobFailed,
    JobNotFound,
    NotDurable,
    PayloadTooLarge,
    RedisFull,
    RedisUnavailable,
    ResultTooLarge,
    Retry,
    TarefaError,
    WrongState,
)
from .job import Group, Job
from .options import TaskOptions
from .records import JobInfo, JobState
from .task import Task

__all__ = [
    "AmbiguousJob",
    "App",
    "BackendUnavailable",
    "DurableUnsupported",
    "Group",
    "Job",
    "JobCancelled",
    "JobContext",
    "JobFailed",
    "JobInfo",
    "JobNotFound",
    "JobState",
    "NotDurable",
    "PayloadTooLarge",
    "Queue",
    "RedisFull",
    "RedisUnavailable",
    "ResultTooLarge",
    "Retry",
    "TarefaError",
    "Task",
    "TaskOptions",
    "WrongState",
    "current_job",
]
__version__ = "0.2.0"
