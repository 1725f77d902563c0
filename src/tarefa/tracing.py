"""What tarefa asks of a tracer (``App.tracing``; ``tarefa.contrib.otel``
gives one): a span around each enqueue, whose context the job carries in its
``trace`` field, and a span around each attempt that continues it, so that a
web request's trace goes on in the worker.

The core calls a tracer only when the App has one: without it, an enqueue
and a job pay nothing. Workers that know no ``trace`` field (earlier
releases) leave it alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Protocol

from .records import Outcome


class Attempt(Protocol):
    def ended(self, outcome: Outcome) -> None:
        """The attempt came to ``outcome`` (completed, retry, failed)."""


class Tracing(Protocol):
    def sending(
        self, queue: str, task: str, job_ids: Sequence[str], operation: str = "send"
    ) -> AbstractContextManager[bytes | None]:
        """Around the enqueue of ``job_ids`` (``operation`` "create": stored
        to be sent later, by the outbox's relay); gives the ``trace`` field
        the jobs carry (None: none, there being no trace to continue)."""

    def processing(
        self, queue: str, task: str, job_id: str, attempt: int, trace: bytes | None
    ) -> AbstractContextManager[Attempt]:
        """Around one attempt of a job that carries ``trace`` (None: it
        carries none); its spans are the job's own code's parents."""

    def current(self) -> bytes | None:
        """The current context as a ``trace`` field: what a job's process
        (``processes=``) continues with ``attached``."""

    def attached(self, trace: bytes | None) -> AbstractContextManager[object]:
        """``trace`` made the current context, in a job's process."""


def attached(tracing: Tracing | None, trace: bytes | None) -> AbstractContextManager[object]:
    """``trace`` made the current context by ``tracing``, if there is one."""
    return nullcontext() if tracing is None else tracing.attached(trace)
