"""Hooks: ``on_success``, ``on_failure`` and ``on_retry``, per task and per App,
run in the worker once a job's outcome is decided.

A hook may be sync (run in the worker's thread pool, so it never blocks the
event loop) or ``async def``. A hook that raises is logged; it never changes the
job's outcome, so it can never lose the job.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from concurrent.futures import Executor
from typing import Any

from ..context import JobContext
from ..records import Outcome, OutcomeKind
from ..task import Task
from .registry import TaskRegistry

log = logging.getLogger("tarefa.worker")

HOOK_OF = {
    OutcomeKind.COMPLETED: "on_success",
    OutcomeKind.RETRY: "on_retry",
    OutcomeKind.FAILED: "on_failure",
}


async def run_hooks(
    app: TaskRegistry,
    task: Task[..., Any],
    context: JobContext,
    outcome: Outcome,
    value: Any,
    executor: Executor,
) -> None:
    """``value``: the job's result when it completed, else the exception."""
    name = HOOK_OF[outcome.kind]
    retry = outcome.kind is OutcomeKind.RETRY
    args = (context, value, outcome.ms / 1000) if retry else (context, value)
    for hook in (getattr(task.options, name), getattr(app, name)):
        if hook is None:
            continue
        try:
            if inspect.iscoroutinefunction(hook):
                await hook(*args)
            else:
                await asyncio.get_running_loop().run_in_executor(
                    executor, functools.partial(hook, *args)
                )
        except Exception:
            log.exception("%s hook of %s failed; the job's outcome stands", name, task.name)
