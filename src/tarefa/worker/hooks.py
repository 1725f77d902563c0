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

log = logging.getLogger("tarefa.worker")

HOOK_OF = {"completed": "on_success", "retry": "on_retry", "failed": "on_failure"}


async def run_hooks(app, task, context, outcome, value: Any, executor: Executor) -> None:
    """``value``: the job's result when it completed, else the exception."""
    name = HOOK_OF[outcome.kind]
    args = (context, value, outcome.ms / 1000) if outcome.kind == "retry" else (context, value)
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
