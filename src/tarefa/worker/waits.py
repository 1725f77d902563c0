"""Bounded waits: what stopping a worker relies on instead of cancellation.

A cancelled task may not end: redis-py's asyncio client can swallow a
``CancelledError`` mid-call, and a job's own code may catch it. So nothing on
the way out waits on a cancellation for ever: loops end on an event they
watch, and whatever is awaited at the end is awaited for a bounded time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterable
from typing import Any

log = logging.getLogger("tarefa.worker")


async def wait_set(event: asyncio.Event, seconds: float) -> bool:
    """Whether ``event`` is set within ``seconds`` (returns at once if it is)."""
    try:
        await asyncio.wait_for(event.wait(), seconds)  # asyncio's own: it ends when cancelled
    except TimeoutError:
        pass
    return event.is_set()


async def settle(tasks: Iterable[asyncio.Future[Any]], seconds: float) -> None:
    """Let ``tasks`` end within ``seconds``; cancel those that have not, and
    give them a second more; leave behind, logged, any that still runs."""
    pending = {t for t in tasks if not t.done()}
    if pending and seconds > 0:
        _, pending = await asyncio.wait(pending, timeout=seconds)
    for task in pending:
        task.cancel()
    if pending:
        _, pending = await asyncio.wait(pending, timeout=1.0)
    for task in pending:
        log.warning("left behind at exit, as it did not end when cancelled: %r", task)


def run(main: Coroutine[Any, Any, None]) -> None:
    """``asyncio.run(main)``, except that the tasks ``main`` leaves behind get
    a second to end once cancelled, not for ever."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(main)
    finally:
        try:
            leftover = asyncio.all_tasks(loop)
            if leftover:
                loop.run_until_complete(settle(leftover, 0))
            loop.run_until_complete(
                asyncio.wait({loop.create_task(loop.shutdown_asyncgens())}, timeout=1.0)
            )
        finally:
            loop.close()
