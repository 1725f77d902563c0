"""Riding out a Redis outage: what counts as one, and how to wait it out.

A worker never stops on a Redis error once it runs: it keeps its running jobs
and their outcomes, and calls again with back-off (0.1 s doubling to 5 s) until
Redis answers. Starting, it stops at once if Redis refuses it (wrong
credentials, an ACL that denies a command): waiting does not mend that.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, TypeVarTuple

from ..store import REDIS_ERRORS

log = logging.getLogger("tarefa.worker")

T = TypeVar("T")
Args = TypeVarTuple("Args")

# Errors from Redis or the way to it (REDIS_ERRORS) never stop a running
# worker: connection errors, LOADING, READONLY (a failover under way) and the
# like pass with time.
__all__ = ["REDIS_ERRORS", "Backoff", "retrying"]


class Backoff:
    """Exponential back-off for reconnecting: 0.1 s doubling to 5 s."""

    def __init__(self) -> None:
        self.delay = 0.0

    def next(self, exc: BaseException) -> float:
        self.delay = min(max(self.delay * 2, 0.1), 5.0)
        # The type and message: redis-py's repr() of its errors leaves the message out.
        log.warning("Redis error (%s: %s); retrying in %.1f s", type(exc).__name__, exc, self.delay)
        return self.delay

    def reset(self) -> None:
        self.delay = 0.0


async def retrying(
    fn: Callable[[*Args], Awaitable[T]], *args: *Args, give_up_after: float | None = None
) -> T | None:
    """Call ``fn`` until Redis answers (or ``give_up_after`` seconds pass: None)."""
    backoff = Backoff()
    deadline = None if give_up_after is None else time.monotonic() + give_up_after
    while True:
        try:
            return await fn(*args)
        except REDIS_ERRORS as exc:
            if deadline is not None and time.monotonic() > deadline:
                log.error("giving up on %s: %s", fn.__name__, exc)
                return None
            await asyncio.sleep(backoff.next(exc))
