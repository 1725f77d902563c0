"""The store: the only code that sends commands to Redis.

Replies come back as plain Python values; key names never leave this package.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, Literal, NoReturn, TypeVar

from redis import exceptions as redis_errors

from ..backend import NO_WINDOW, When, Window
from ..errors import JobNotFound, NotDurable, WrongState
from ..records import Enqueued, StoredJob
from .base import FINAL_STATES, UNREACHABLE, Call, is_full
from .browse import Browsing
from .connection import REFUSED
from .durable import DurableCalls
from .job_hash import stored_job
from .keys import QUEUES, job_ref, queue_keys
from .memory import MemorySettings
from .replies import decode_hash, decode_list, enqueued, enqueued_many, time_left, undecoded
from .workers import WorkerCalls

T = TypeVar("T")


@dataclass(slots=True)  # (made once per enqueue: no frozen __init__)
class _Adding(Generic[T]):
    """One call of an enqueue script, with what its errors and its reply need."""

    call: Call
    queue: str
    job_ids: list[str]
    fields: Sequence[Any]  # (one job's: each job of a batch has the same)
    decode: Callable[[Any], T]  # the script's reply into Enqueued records


class Store(Browsing, WorkerCalls, MemorySettings, DurableCalls):
    """tarefa's view of one Redis: what producers, the API and the CLI do here;
    jobs waiting for jobs in ``waiting.py``, the worker's calls in
    ``workers.py``, an operator's reads in ``browse.py``, its memory settings
    in ``memory.py``."""

    # -- producing ---------------------------------------------------------
    #
    # An enqueue that cannot reach Redis raises RedisUnavailable, with the ids
    # of the jobs whose fate is unknown: enqueueing them again with those ids
    # is safe. One that a full Redis refuses raises RedisFull: its script
    # wrote nothing (refused at its first write). A durable one sends WAITAOF
    # behind its script (durable.py).

    def _enqueue(
        self, queue: str, job_id: str, when: When, fields: Sequence[Any], window: Window,
        waits: int, durable: bool,
    ) -> _Adding[Enqueued]:  # fmt: skip
        args = [job_id, *when, *window, waits, int(durable), *fields]
        call = self.scripts.enqueue, queue_keys(queue), args
        return _Adding(call, queue, [job_id], fields, partial(enqueued, job_id))

    def enqueue(
        self, queue: str, job_id: str, when: When, fields: Sequence[Any],
        window: Window = NO_WINDOW, waits: int = 0, durable: bool = False,
    ) -> Enqueued:  # fmt: skip
        """Add one job (waiting for ``waits`` others, see ``wait_for``), unless
        its id is taken or a throttle or debounce window keeps another job.
        ``durable``: return once the write is on disk (WAITAOF), else raise
        ``NotDurable``."""
        adding = self._enqueue(queue, job_id, when, fields, window, waits, durable)
        return self._add(adding, durable)

    async def aenqueue(
        self, queue: str, job_id: str, when: When, fields: Sequence[Any],
        window: Window = NO_WINDOW, waits: int = 0, durable: bool = False,
    ) -> Enqueued:  # fmt: skip
        adding = self._enqueue(queue, job_id, when, fields, window, waits, durable)
        return await self._aadd(adding, durable)

    def _enqueue_many(
        self, queue: str, when: When, jobs: Sequence[tuple[str, list[Any]]], durable: bool
    ) -> _Adding[list[Enqueued]]:
        args: list[Any] = [*when, 0, int(durable), len(jobs[0][1])]
        for job_id, fields in jobs:
            args.append(job_id)
            args.extend(fields)
        ids = [job_id for job_id, _ in jobs]
        call = self.scripts.enqueue_many, queue_keys(queue), args
        return _Adding(call, queue, ids, jobs[0][1], partial(enqueued_many, ids))

    def enqueue_many(
        self, queue: str, when: When, jobs: Sequence[tuple[str, list[Any]]], durable: bool = False
    ) -> list[Enqueued]:
        """Add a batch of jobs (all with the same fields) in one round trip."""
        return self._add(self._enqueue_many(queue, when, jobs, durable), durable)

    async def aenqueue_many(
        self, queue: str, when: When, jobs: Sequence[tuple[str, list[Any]]], durable: bool = False
    ) -> list[Enqueued]:
        return await self._aadd(self._enqueue_many(queue, when, jobs, durable), durable)

    # One enqueue script call, run and answered (its twin below for asyncio).
    def _add(self, adding: _Adding[T], durable: bool) -> T:
        try:
            self._register_queue(adding.queue)
            call, ids = adding.call, adding.job_ids
            reply = self._run_durable(call, ids) if durable else self._run(call)
        except Exception as exc:
            self._not_added(exc, adding)
        return adding.decode(reply)

    async def _aadd(self, adding: _Adding[T], durable: bool) -> T:
        # A durable call keeps a pooled connection of its own: on the shared
        # one, its WAITAOF would hold up every call behind it.
        try:
            if self._registers(adding.queue):  # (no coroutine made on the hot path)
                await self._aregister_queue(adding.queue)
            call, ids = adding.call, adding.job_ids
            reply = await (self._arun_durable(call, ids) if durable else self._arun_shared(call))
        except Exception as exc:
            self._not_added(exc, adding)
        return adding.decode(reply)

    def _not_added(self, exc: Exception, adding: _Adding[Any]) -> NoReturn:
        """Raise what an enqueue that failed with ``exc`` raises:
        RedisUnavailable when the jobs' fate is unknown, RedisFull when Redis
        refused them for memory, NotDurable (its reply decoded) when they were
        added but not fsynced; any other ``exc`` as it is (a refusal is not an
        outage: as Redis said it)."""
        task = _task_of(adding.fields)
        if isinstance(exc, NotDurable):
            exc.reply = adding.decode(exc.reply)
        elif isinstance(exc, UNREACHABLE) and not isinstance(exc, REFUSED):
            raise self.unavailable(exc, adding.job_ids, task) from exc
        elif isinstance(exc, redis_errors.ResponseError) and is_full(exc):
            raise self.full(adding.queue, adding.job_ids, task) from exc
        raise exc

    # -- reading jobs and queues --------------------------------------------

    def job(self, queue: str, job_id: str) -> StoredJob | None:
        raw = undecoded(self.clients.sync.hgetall(queue_keys(queue).job(job_id)))
        return stored_job(queue, job_id, decode_hash(raw)) if raw else None

    async def ajob(self, queue: str, job_id: str) -> StoredJob | None:
        raw = undecoded(await self.clients.aio.hgetall(queue_keys(queue).job(job_id)))
        return stored_job(queue, job_id, decode_hash(raw)) if raw else None

    def find_queues(self, job_id: str) -> list[str]:
        """Every queue holding a job with this id, by name: ids are unique
        within a queue, not across queues (a search over every known queue)."""
        queues = self.queues()
        pipe = self.clients.sync.pipeline(transaction=False)
        for queue in queues:
            pipe.exists(queue_keys(queue).job(job_id))
        return [queue for queue, found in zip(queues, pipe.execute(), strict=True) if found]

    def queues(self) -> list[str]:
        return sorted(q.decode() for q in undecoded(self.clients.sync.smembers(QUEUES)))

    def counts(self, queue: str) -> dict[str, int]:
        k = queue_keys(queue)
        pipe = self.clients.sync.pipeline(transaction=False)
        pipe.llen(k.ready)
        for zset in (k.prioritized, k.scheduled, k.active, k.completed, k.failed, k.waiting):
            pipe.zcard(zset)
        ready, prioritized, scheduled, active, completed, failed, waiting = pipe.execute()
        for key in self.lane_keys(queue):  # keyed jobs wait in their lanes
            pipe.llen(k.lane(key))
        return {
            "queued": ready + prioritized + sum(pipe.execute()),
            "waiting": waiting,
            "scheduled": scheduled,
            "active": active,
            "completed": completed,
            "failed": failed,
        }

    def purge(self, queue: str) -> int:
        """Delete every job of a queue, whatever its state, and their indexes.
        Kept: the paused flag, cron marks, rate-limit logs (a purge must not
        reset a limit), the counts of jobs (metrics never go back) and the
        lease counter of tarefa 0.1.0's workers (one of theirs must not give a
        job enqueued again under the id of one running now its lease token).
        Jobs running now finish; their outcomes are discarded. Returns how
        many keys were deleted."""
        k = queue_keys(queue)
        kept = {k.paused, k.rate, k.stats, k.history, k.lease_seq}
        kept_prefixes = (k.cron_prefix, k.lane_rate_prefix)
        client = self.clients.sync_for(k.ready)  # (the scan: the keys of one slot)
        base = k.job_prefix.removesuffix("job:")  # tarefa:{q}:
        deleted, batch = 0, []
        for raw in client.scan_iter(match=base + "*", count=1000):
            key = raw.decode()
            if key in kept or key.startswith(kept_prefixes):
                continue
            batch.append(key)
            if len(batch) >= 1000:
                deleted += client.delete(*batch)
                batch = []
        return deleted + (client.delete(*batch) if batch else 0)

    def pause(self, queue: str) -> None:
        self._run((self.scripts.pause, queue_keys(queue), []))

    def resume(self, queue: str) -> bool:
        was_paused: int = self._run((self.scripts.resume, queue_keys(queue), []))
        return was_paused == 1

    def is_paused(self, queue: str) -> bool:
        return bool(self.clients.sync.exists(queue_keys(queue).paused))

    def failed_ids(self, queue: str, limit: int = 100) -> list[str]:
        ids = undecoded(self.clients.sync.zrevrange(queue_keys(queue).failed, 0, limit - 1))
        return [i.decode() for i in ids]

    # -- changing one job from outside a worker --------------------------------

    def _retry(self, queue: str, job_id: str) -> Call:
        return self.scripts.retry, queue_keys(queue), [job_id]

    def retry(self, queue: str, job_id: str) -> None:
        """Re-queue a failed job, attempts reset: JobNotFound, or WrongState
        when it has not failed."""
        reply = self._run(self._retry(queue, job_id))
        _changed(reply, queue, job_id, "only a failed job can be retried")

    async def aretry(self, queue: str, job_id: str) -> None:
        reply = await self._arun(self._retry(queue, job_id))
        _changed(reply, queue, job_id, "only a failed job can be retried")

    def run_now(self, queue: str, job_id: str) -> None:
        """Make a scheduled job ready at once: JobNotFound, or WrongState when
        it is not scheduled."""
        reply = self._run((self.scripts.run_now, queue_keys(queue), [job_id]))
        _changed(reply, queue, job_id, "only a scheduled job can run now")

    # -- progress, reported by a running job -----------------------------------

    def _progress(self, queue: str, job_id: str, token: bytes, progress: bytes) -> Call:
        return self.scripts.progress, queue_keys(queue), [job_id, token, progress]

    def progress(self, queue: str, job_id: str, token: bytes, progress: bytes) -> bool:
        """Store a running attempt's progress; False if it no longer holds the job."""
        stored: int = self._run(self._progress(queue, job_id, token, progress))
        return stored == 1

    async def aprogress(self, queue: str, job_id: str, token: bytes, progress: bytes) -> bool:
        stored: int = await self._arun(self._progress(queue, job_id, token, progress))
        return stored == 1

    def _cancel(self, queue: str, job_id: str, keep_ms: int) -> Call:
        return self.scripts.cancel, queue_keys(queue), [job_id, keep_ms]

    def cancel(self, queue: str, job_id: str, keep_ms: int) -> bool:
        """Cancel a job that has not ended, and the jobs waiting for it; False
        when it had ended, JobNotFound when there is no such job."""
        reply = self._run(self._cancel(queue, job_id, keep_ms))
        if isinstance(reply, list):
            self.resolve(job_ref(queue, job_id), "cancelled", b"", decode_list(reply[1]))
            return True
        return _cancelled(reply, queue, job_id)

    async def acancel(self, queue: str, job_id: str, keep_ms: int) -> bool:
        reply = await self._arun(self._cancel(queue, job_id, keep_ms))
        if isinstance(reply, list):
            await self.aresolve(job_ref(queue, job_id), "cancelled", b"", decode_list(reply[1]))
            return True
        return _cancelled(reply, queue, job_id)

    # -- cron -----------------------------------------------------------------------

    async def time_ms(self) -> int:
        """Now, in ms since the epoch, on the Redis server's clock: the one clock
        every due time is judged by."""
        seconds, micros = await self.clients.aio.time()
        return seconds * 1000 + micros // 1000

    async def cron_schedule(
        self, queue: str, task: str, id_prefix: str, previous: int, next_tick: int,
        lead_ms: int, fields: Sequence[Any],
    ) -> tuple[int, int, int]:  # fmt: skip
        """Keep a cron task's next tick scheduled (cron_schedule.lua): ticks are
        seconds since the epoch, and a tick's job id is ``id_prefix`` + tick.
        Returns the ticks (0 for none) merged into a run still waiting, run now
        to catch up, and scheduled."""
        await self._aregister_queue(queue)
        args = [task, id_prefix, previous, next_tick, lead_ms, *fields]
        call = (self.scripts.cron_schedule, queue_keys(queue), args)
        merged, caught_up, scheduled = (int(tick) for tick in await self._arun(call))
        return merged, caught_up, scheduled

    # -- waiting for a job's end ----------------------------------------------

    def _wait(self, queue: str, job_id: str) -> Call:
        return self.scripts.wait, queue_keys(queue), [job_id]

    def wait_end(self, queue: str, job_id: str, timeout: float | None) -> bytes:
        """Block until the job is final or ``timeout`` seconds pass (None: no
        limit, 0: just look); return its state (b'' if there is no such job).

        The job's end pushes one token per registered waiter. A token left by
        a waiter that gave up can wake a later one early, so every wake-up
        looks again, and waits again for the time that is left."""
        deadline = None if timeout is None else time.monotonic() + timeout
        signal = queue_keys(queue).done_signal(job_id)
        while True:
            state: bytes = self._run(self._wait(queue, job_id))
            left = time_left(deadline)
            if state in FINAL_STATES or state == b"" or left == 0:
                return state
            self._pop_signal(signal, left)

    async def await_end(self, queue: str, job_id: str, timeout: float | None) -> bytes:
        deadline = None if timeout is None else time.monotonic() + timeout
        signal = queue_keys(queue).done_signal(job_id)
        while True:
            state: bytes = await self._arun(self._wait(queue, job_id))
            left = time_left(deadline)
            if state in FINAL_STATES or state == b"" or left == 0:
                return state
            await self._apop_signal(signal, left)


def _task_of(fields: Sequence[Any]) -> str:
    """The task name among a job's fields (name/value pairs)."""
    names = list(fields[::2])
    task: str = fields[names.index("task") * 2 + 1] if "task" in names else "?"
    return task


if TYPE_CHECKING:  # the Store keeps the backend contract: a missing call is a type error
    from ..backend import Backend

    _keeps: type[Backend] = Store

# -- what the scripts that change one job answer ----------------------------


def _changed(reply: Literal[1] | bytes, queue: str, job_id: str, only: str) -> None:
    """retry.lua and run_now.lua answer 1 when done, else the job's state
    (empty: no such job)."""
    if reply == 1:
        return
    if not reply:
        raise JobNotFound(f"no job {job_id} in queue {queue!r}")
    raise WrongState(f"{only}; job {job_id} is {reply.decode()}", reply.decode())


def _cancelled(reply: bytes, queue: str, job_id: str) -> bool:
    """cancel.lua's answer when it cancelled nothing: the job's state (empty:
    no such job)."""
    if not reply:
        raise JobNotFound(f"no job {job_id} in queue {queue!r}")
    return False
