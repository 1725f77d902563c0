"""What every part of the store shares: the connections, the scripts, and how
a script call is run from sync or asyncio code.

Each operation builds its script call (``Call``) once and runs it from sync
code (``op``) or asyncio code (``await aop``). An operation of several calls,
each depending on the last one's reply, is written once as ``Steps``: a
generator that yields each call and is sent its reply, which ``_drive`` and
``_adrive`` run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from redis import exceptions as redis_errors

from ..errors import RedisFull, RedisTimedOut, RedisUnavailable
from .connection import RETRIES, TIMEOUT, Clients, redacted
from .keys import QUEUES, QueueKeys
from .packing import pack
from .scripts import Script, scripts
from .sentinel import is_sentinel_url

Call = tuple[Script, QueueKeys, list[Any]]  # a script, the queue it runs on, its ARGV


@dataclass(frozen=True, slots=True)
class Read:
    """A plain command among an operation's steps, e.g. ``Read(("HMGET", key, "state"))``
    (on a cluster, a command that names keys: it is routed by them)."""

    command: tuple[str | int, ...]


T = TypeVar("T")
Steps = Generator[Call | Read, Any, T]  # yields each call, is sent its reply, returns a T

FINAL_STATES = (b"completed", b"failed", b"cancelled")
# redis-py's errors once its retries ran out (RedisUnavailable is one of them).
# REFUSED (wrong credentials, an ACL) are ConnectionErrors too: catch them first.
UNREACHABLE = (redis_errors.ConnectionError, redis_errors.TimeoutError)
# A cluster's answer that a slot is elsewhere now (ASK, a slot mid-migration,
# is not followed: the call raises, and is safe to send again).
MOVED = (redis_errors.MovedError, redis_errors.TryAgainError)
MOVES = 4  # tries of a call that is told MOVED or TRYAGAIN
REGISTER_AGAIN = 10.0  # seconds: how often enqueues name their queue again (_registers)
TRYAGAIN_PAUSE = 0.05  # seconds, times the try's number


def is_full(exc: BaseException) -> bool:
    """Whether Redis refused a command because its memory is full (maxmemory
    reached, nothing more to evict). Redis 7 replies ``OOM ...``, which
    redis-py raises as OutOfMemoryError; Redis 6.2 wraps a script's refused
    command in a script error, a plain ResponseError that quotes it."""
    return isinstance(exc, redis_errors.OutOfMemoryError) or (
        isinstance(exc, redis_errors.ResponseError) and "OOM command not allowed" in str(exc)
    )


class StoreBase:
    """One Redis: its clients and tarefa's scripts."""

    def __init__(
        self, url: str | None = None, *, retries: int = RETRIES, timeout: float = TIMEOUT,
        durable_replicas: int | None = None,
    ):  # fmt: skip
        self.clients = Clients(url, retries=retries, timeout=timeout)
        self._durable_replicas = durable_replicas
        self.scripts = scripts()
        self._registered: dict[str, float] = {}  # queue -> when it was last named (monotonic)
        self._waitaof: bool | None = None  # whether the server has WAITAOF (durable)
        # Workers of this process, for registering them again (workers.py):
        # what they registered, and those a full Redis left unlisted.
        self._registrations: dict[str, dict[str, Any]] = {}
        self._unlisted: set[str] = set()

    @property
    def url(self) -> str:
        return self.clients.url

    @property
    def durable_replicas(self) -> int:
        """How many replicas a durable enqueue waits for (WAIT): as given, else
        1 on a Redis Cluster or where a sentinel names the master (a replicated
        Redis), else 0."""
        if self._durable_replicas is None:
            replicated = is_sentinel_url(self.url) or self.clients.is_cluster
            self._durable_replicas = 1 if replicated else 0
        return self._durable_replicas

    async def aclose(self) -> None:
        """Close this event loop's connections (a thread's own loop, ending)."""
        await self.clients.aclose()

    def _run(self, call: Call) -> Any:
        script, queue, args = call
        if self.clients.is_cluster:
            return self._at_node(queue.ready, lambda node: script.run(node.direct, queue, args))
        return script.run(self.clients.direct, queue, args)

    # On a Redis Cluster, a queue's calls go to the node that holds its slot,
    # on that node's own connections, as fast as to a single Redis. Told MOVED
    # (a failover, a resharding), the store sends the call again to the node
    # the reply names, and reads the slot map again for the calls after it
    # (the map a node gives can lag the failover by a moment: MOVED is the
    # news that counts). Told TRYAGAIN (keys mid-migration), it waits a moment
    # and tries again. When the node does not answer, it reads the map again
    # before it raises, so that the caller's next try (an id makes a retried
    # enqueue safe) reaches the replica promoted.

    def _at_node(self, key: str, send: Callable[[Clients], T]) -> T:
        node = self.clients.node(key)
        for attempt in range(MOVES):
            try:
                return send(node)
            except MOVED as told:
                if attempt == MOVES - 1:
                    raise
                self.clients.reread_slots()
                if isinstance(told, redis_errors.TryAgainError):
                    time.sleep(TRYAGAIN_PAUSE * (attempt + 1))
                node = self.clients.redirected(told) or self.clients.node(key)
            except UNREACHABLE:
                self.clients.reread_slots()
                raise
        raise AssertionError("unreachable")  # (the loop returns or raises)

    async def _aat_node(self, key: str, send: Callable[[Clients], Awaitable[T]]) -> T:
        node = await self.clients.anode(key)
        for attempt in range(MOVES):
            try:
                return await send(node)
            except MOVED as told:
                if attempt == MOVES - 1:
                    raise
                await self.clients.areread_slots()
                if isinstance(told, redis_errors.TryAgainError):
                    await asyncio.sleep(TRYAGAIN_PAUSE * (attempt + 1))
                node = self.clients.redirected(told) or await self.clients.anode(key)
            except UNREACHABLE:
                await self.clients.areread_slots()
                raise
        raise AssertionError("unreachable")

    async def _arun(self, call: Call) -> Any:
        script, queue, args = call
        if self.clients.is_cluster:
            return await self._aat_node(
                queue.ready, lambda node: script.acall(node.aio, queue, args)
            )
        return await script.acall(self.clients.aio, queue, args)

    # A blocking wait for a signal (a job's end), on a cluster on the node that
    # holds its key, as a queue's calls are: the cluster client's own slot
    # map can still name a master that died.

    def _pop_signal(self, key: str, timeout: float | None) -> None:
        if self.clients.is_cluster:
            self._at_node(key, lambda node: node.sync_blocking.blpop([key], timeout))
        else:
            self.clients.sync_blocking.blpop([key], timeout)

    async def _apop_signal(self, key: str, timeout: float | None) -> None:
        if self.clients.is_cluster:
            await self._aat_node(key, lambda node: node.aio_blocking.blpop([key], timeout))
        else:
            await self.clients.aio_blocking.blpop([key], timeout)

    def _drive(self, steps: Steps[T]) -> T:
        """Run an operation of several calls from sync code."""
        reply: Any = None
        while True:
            try:
                step = steps.send(reply)
            except StopIteration as done:
                result: T = done.value
                return result
            if isinstance(step, Read):
                reply = self._read(step)
            else:
                reply = self._run(step)

    async def _adrive(self, steps: Steps[T]) -> T:
        """Run an operation of several calls from asyncio code."""
        reply: Any = None
        while True:
            try:
                step = steps.send(reply)
            except StopIteration as done:
                result: T = done.value
                return result
            if isinstance(step, Read):
                reply = await self._aread(step)
            else:
                reply = await self._arun(step)

    def _read(self, read: Read) -> Any:
        if self.clients.is_cluster:
            return self.clients.sync.execute_command(*read.command)
        return self.clients.direct.execute_command(*read.command)

    async def _aread(self, read: Read) -> Any:
        if self.clients.is_cluster:
            return await self.clients.aio.execute_command(*read.command)
        return await self.clients.autopipeline.execute_packed(pack(*read.command))

    async def _arun_shared(self, call: Call) -> Any:
        """``_arun`` on the loop's connection that its coroutines share, in
        batches (autopipeline.py): for calls that are safe to send again."""
        script, queue, args = call
        if self.clients.is_cluster:
            return await self._aat_node(
                queue.ready, lambda node: script.arun(node.autopipeline, queue, args)
            )
        return await script.arun(self.clients.autopipeline, queue, args)

    # The registry of queues is a global key, outside the queue's slot: a
    # separate command, sent with a process's first enqueue to a queue, and
    # again every REGISTER_AGAIN seconds of enqueues: a Redis that lost its
    # data (no persistence, an empty replica promoted) lists the queue again.
    def _registers(self, queue: str) -> bool:
        last = self._registered.get(queue)
        return last is None or time.monotonic() - last > REGISTER_AGAIN

    def _register_queue(self, queue: str) -> None:
        if self._registers(queue):
            self.clients.sync.sadd(QUEUES, queue)
            self._registered[queue] = time.monotonic()

    async def _aregister_queue(self, queue: str) -> None:
        if self._registers(queue):
            await self._aread(Read(("SADD", QUEUES, queue)))
            self._registered[queue] = time.monotonic()

    def unavailable(
        self, exc: Exception, job_ids: Sequence[str], task: str, what: str = ""
    ) -> RedisUnavailable:
        """The error for an enqueue that could not reach Redis: where, why, and
        which jobs to enqueue again with their ids (safe: an id that exists
        adds nothing). ``what``: what became of them, if not "unknown"."""
        clients = self.clients
        kind = RedisTimedOut if isinstance(exc, redis_errors.TimeoutError) else RedisUnavailable
        if len(job_ids) == 1:
            what = what or f"job {job_ids[0]} of {task} may or may not have been enqueued"
            again = f"enqueueing it again with .with_options(job_id={job_ids[0]!r})"
        else:
            what = what or f"{len(job_ids)} jobs of {task} may or may not have been enqueued"
            again = "enqueueing each again with .with_options(job_id=...) (.job_ids has them)"
        return kind(
            f"could not reach Redis at {redacted(clients.url)} after {clients.retries + 1} "
            f"attempts ({exc}; each waits up to {clients.timeout:g} s): {what}. Nothing is "
            f"kept to send later; {again} is safe: an id that exists adds nothing",
            job_ids,
        )

    def full(self, queue: str, job_ids: Sequence[str], task: str) -> RedisFull:
        """The error for an enqueue Redis refused for want of memory (is_full):
        where, which jobs, and that enqueueing them again later is safe (a
        refused script wrote nothing)."""
        if len(job_ids) == 1:
            what = f"job {job_ids[0]} of {task} was not enqueued"
            again = f"enqueueing it again with .with_options(job_id={job_ids[0]!r})"
        else:
            what = f"{len(job_ids)} jobs of {task} were not enqueued"
            again = "enqueueing each again with .with_options(job_id=...) (.job_ids has them)"
        return RedisFull(
            f"Redis at {redacted(self.clients.url)} is full (its used memory reached its "
            f"maxmemory, and it refuses writes that need more): {what} in queue {queue!r}. "
            f"Once workers have drained jobs, or maxmemory was raised, {again} is safe: an "
            "id makes one job at most",
            queue,
            job_ids,
        )
