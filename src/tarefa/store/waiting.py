"""Jobs waiting for jobs (chains, groups).

A job enqueued with parents waits (state 'waiting') until each parent has
ended and been reported to it (resolve.lua). A parent's end is reported by its
worker right after recording it, by the producer when the parent had already
ended, and, as a safety net, by the periodic check of waiting jobs
(check_waiting.lua). Parents may be in other queues (other cluster slots), so
these steps are separate calls, each idempotent.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from ..errors import RedisUnavailable
from .base import FINAL_STATES, UNREACHABLE, Call, Read, Steps, StoreBase
from .connection import REFUSED
from .keys import job_ref, queue_keys, split_ref
from .replies import decode_list, undecoded

CANCELLED_KEEP_MS = 86_400_000  # how long a job cancelled with its parent is kept
WAITING_CHECK_MS = 30_000  # how often a waiting job's parents are checked (safety net)


class WaitingJobs(StoreBase):
    """Registering a waiting job on its parents and reporting their ends."""

    def _add_dependent(self, parent: str, children: list[str]) -> Call:
        queue, parent_id = split_ref(parent)
        return self.scripts.add_dependent, queue_keys(queue), [parent_id, *children]

    def _parent_end(self, parent: str) -> Read:
        queue, parent_id = split_ref(parent)
        return Read(("HMGET", queue_keys(queue).job(parent_id), "state", "result"))

    def _reporting_end(self, parent: str, children: list[str]) -> Steps[bool]:
        """Report a parent's end to ``children`` if it has ended: whether it had."""
        state, result = undecoded((yield self._parent_end(parent)))
        ended = _ended(state, result)
        if ended is None:
            return False
        yield from self._resolving(parent, *ended, children)
        return True

    def _registering(self, child: str, parents: Sequence[str]) -> Steps[None]:
        for parent in parents:
            while (yield self._add_dependent(parent, [child])) != 1:  # it has ended
                if (yield from self._reporting_end(parent, [child])):
                    break
                # It has not ended after all: it runs again (retried, or enqueued
                # anew, since add_dependent looked), so register on this run.

    def wait_for(self, child: str, parents: Sequence[str]) -> None:
        """Have ``child`` (enqueued waiting) told when each parent ends."""
        try:
            self._drive(self._registering(child, parents))
        except REFUSED:  # not an outage: as Redis said it
            raise
        except UNREACHABLE as exc:
            raise self._unregistered(exc, child) from exc

    async def await_for(self, child: str, parents: Sequence[str]) -> None:
        try:
            await self._adrive(self._registering(child, parents))
        except REFUSED:
            raise
        except UNREACHABLE as exc:
            raise self._unregistered(exc, child) from exc

    def _unregistered(self, exc: Exception, child: str) -> RedisUnavailable:
        child_id = split_ref(child)[1]
        what = (
            f"job {child_id} was enqueued, waiting for other jobs, but is not yet registered "
            f"on all of them: the periodic check of waiting jobs does it (every "
            f"{WAITING_CHECK_MS // 1000} s)"
        )
        return self.unavailable(exc, [child_id], "", what)

    def _resolve(self, child: str, parent: str, outcome: str, result: bytes) -> Call:
        queue, child_id = split_ref(child)
        args = [child_id, parent, outcome, result, CANCELLED_KEEP_MS]
        return self.scripts.resolve, queue_keys(queue), args

    def _resolving(
        self, parent: str, outcome: str, result: bytes, children: list[str]
    ) -> Steps[None]:
        todo = [(parent, outcome, result, children)]
        while todo:
            parent, outcome, result, children = todo.pop()
            for child in children:
                reply = yield self._resolve(child, parent, outcome, result)
                if reply[0] == b"cancelled":
                    todo.append((child, "cancelled", b"", decode_list(reply[1])))

    def resolve(self, parent: str, outcome: str, result: bytes, children: list[str]) -> None:
        """Report a parent's end to the jobs waiting for it, and, when that
        cancels them, theirs to the jobs waiting for them, and so on."""
        self._drive(self._resolving(parent, outcome, result, children))

    async def aresolve(self, parent: str, outcome: str, result: bytes, children: list[str]) -> None:
        await self._adrive(self._resolving(parent, outcome, result, children))

    async def check_waiting(self, queue: str, limit: int = 100) -> tuple[int, list[str]]:
        """Resolve the waiting jobs due a check whose parents have ended
        unreported. Returns how many parents' ends were reported, and the ids
        of waiting jobs lost (as ``Fetched.lost``)."""
        flat, lost = await self.scripts.check_waiting.acall(
            self.clients.aio, queue_keys(queue), [limit, WAITING_CHECK_MS]
        )
        reported = 0
        for i in range(0, len(flat), 2):
            child = job_ref(queue, flat[i].decode())
            for parent in orjson.loads(flat[i + 1]).get("parents", []):
                reported += await self._adrive(self._reporting_end(parent, [child]))
        return reported, decode_list(lost)


def _ended(state: bytes | None, result: bytes | None) -> tuple[str, bytes] | None:
    """A parent's end as resolve.lua takes it; None while it has not ended. A
    parent that no longer exists counts as completed: a completed job's record
    expires with its result (result_ttl), a failed one is kept until deleted."""
    if state is None:
        return "completed", b""
    if state in FINAL_STATES:
        return state.decode(), result or b""
    return None
