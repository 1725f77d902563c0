"""Running a job's code inline, in the caller, as a worker would run it.

A sync task or hook runs in a worker's thread, where no event loop runs; an
async task runs on the worker's loop. In testing mode both run in the caller's
thread, which may have a loop running (a test that enqueues from async code):
that loop is set aside while the code runs, so the code sees what it would in
a worker, and the caller's loop waits as it would for any blocking call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


@contextmanager
def _loop_set_aside() -> Iterator[None]:
    """No running event loop in this thread for the block; the one running
    before (if any) is back after it."""
    loop = asyncio._get_running_loop()
    asyncio._set_running_loop(None)
    try:
        yield
    finally:
        asyncio._set_running_loop(loop)


class InlineExecutor(Executor):
    """Runs a sync function (a sync task or hook) at once, in the calling thread.
    The event loop running there is set aside meanwhile, so the function sees
    what it would in a worker's thread: no running loop (it may call
    ``asyncio.run``; ``current_job().progress()`` reports synchronously)."""

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()
        with _loop_set_aside():
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # as a pool thread does: the awaiting side gets it
                future.set_exception(exc)
            else:
                future.set_result(result)
        return future


INLINE = InlineExecutor()


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end from sync code, on a fresh event loop (as
    ``asyncio.run`` does, without touching the thread's current loop). Called
    from sync code inside a running loop, that loop is set aside meanwhile: it
    waits, as it would for any blocking call (such as the real enqueue's round
    trip to Redis)."""
    with _loop_set_aside(), asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
        return runner.run(coro)
