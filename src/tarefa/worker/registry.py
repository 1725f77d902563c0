"""What running a job asks of the App it belongs to (execution.py,
hooks.py): its tasks by name, how values become bytes, the result limit,
where a job's progress goes, the App's hooks, scopes and tracer. ``App`` declares it
(checked below); testing mode runs jobs with the same code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ..backend import Producing
from ..job_scopes import JobScope
from ..serializer import Serializer
from ..task import Task
from ..tracing import Tracing


class TaskRegistry(Protocol):
    @property
    def tasks(self) -> Mapping[str, Task[..., Any]]: ...

    @property
    def serializer(self) -> Serializer: ...

    @property
    def max_result_bytes(self) -> int | None: ...

    @property
    def backend(self) -> Producing: ...

    @property
    def job_scopes(self) -> Sequence[JobScope]: ...

    @property
    def tracing(self) -> Tracing | None: ...

    # Hooks for every task, after the task's own (hooks.py).
    @property
    def on_success(self) -> Callable[..., Any] | None: ...

    @property
    def on_failure(self) -> Callable[..., Any] | None: ...

    @property
    def on_retry(self) -> Callable[..., Any] | None: ...


if TYPE_CHECKING:
    from ..app import App

    _declares: type[TaskRegistry] = App
