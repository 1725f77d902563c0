"""How the tests wait: for what they expect, never for a time they guessed.

A test waits on an event (BLPOP, ``job.result()``, a process's exit) or,
where nothing signals it, polls a condition (``wait_until``). Each wait gives
up after ``PATIENCE`` seconds: a ceiling for a run where something is broken,
far above what anything takes even on a machine loaded many times over
(shared cores, other suites, a disk busy syncing), so a slow run is never a
failed one.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import redis

PATIENCE = 60.0  # seconds any wait of a test lasts at most


def wait_for_list(
    client: redis.Redis, key: str, count: int, timeout: float = PATIENCE
) -> list[str]:
    """Pop ``count`` items from a list as they arrive (BLPOP: an event, not a sleep)."""
    items = []
    for _ in range(count):
        popped = client.blpop([key], timeout=timeout)
        assert popped is not None, f"timed out waiting for item {len(items) + 1} of {key}"
        items.append(popped[1].decode())
    return items


def wait_until(
    predicate,
    what: str = "a condition",
    timeout: float = PATIENCE,
    *,
    not_yet: tuple[type[Exception], ...] = (),
):
    """Poll ``predicate`` every 20 ms until it is truthy, and return its value:
    for states that nothing signals (a count, a line in a log, a process gone).
    ``not_yet``: errors that mean the state is yet to come (a server that is
    starting, syncing or failing over refuses for a while)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except not_yet:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


def drain(worker, describe: Callable[[], str] = str) -> None:
    """Run a burst worker (``Worker(..., burst=True)``) in a thread of its own
    until it ends, its queues empty; ``describe()`` says why, if it does not."""
    thread = threading.Thread(target=asyncio.run, args=(worker.run(),))
    thread.start()
    thread.join(PATIENCE)
    drained = not thread.is_alive()
    if not drained:
        worker.stop(now=True)
        thread.join(PATIENCE)
    assert drained, "the worker did not drain its queues:\n" + describe()
