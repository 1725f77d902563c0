"""What a framework puts around every job (``App.around_each_job``): Django
closes stale database connections before and after it, Flask pushes its app
context. A scope is entered where the job runs (its pool thread, the event
loop for an async task, a pool process) and left once it returned or raised.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack
from typing import Any

JobScope = Callable[[], AbstractContextManager[Any]]


def within(
    scopes: Sequence[JobScope], fn: Callable[..., Any], is_async: bool
) -> Callable[..., Any]:
    """``fn``, called inside every one of ``scopes`` (the first outermost)."""
    if not scopes:
        return fn
    if is_async:

        @functools.wraps(fn)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            with ExitStack() as stack:
                for scope in scopes:
                    stack.enter_context(scope())
                return await fn(*args, **kwargs)

        return run_async

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        with ExitStack() as stack:
            for scope in scopes:
                stack.enter_context(scope())
            return fn(*args, **kwargs)

    return run
