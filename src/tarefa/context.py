"""``current_job()``: what a running job can know about itself."""

from __future__ import annotations

import logging
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass(frozen=True)
class JobContext:
    id: str
    queue: str
    task: str
    attempt: int  # 1 on the first run, 2 on the first retry...
    logger: logging.Logger = field(repr=False, default=logging.getLogger("tarefa.job"))


_current: ContextVar[JobContext | None] = ContextVar("tarefa_current_job", default=None)


def current_job() -> JobContext:
    """The job being run by this worker task or thread."""
    job = _current.get()
    if job is None:
        raise RuntimeError("current_job() is only available inside a running job")
    return job
