"""The only code that sends commands to Redis.

Each operation builds its script call (or command) once and runs it from sync
code (``op``) or asyncio code (``await aop``). Replies come back as plain
Python values; key names never leave this package.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from redis.exceptions import NoScriptError

from .connection import Clients, async_client
from .keys import QUEUES, WORKERS, queue_keys, worker_key
from .replies import Fetched, decode_hash, parse_fetched, time_left
from .scripts import Script, scripts

Call = tuple[Script, list[str], list[Any]]
When = tuple[int, int]  # (delay in ms, priority): 0, 0 is "now, no priority"

FINAL_STATES = (b"completed", b"failed", b"cancelled")


class Store:
    """tarefa's view of one Redis."""

    def __init__(self, url: str | None = None, *, retries: int = 3):
        self.clients = Clients(url, retries=retries)
        self.scripts = scripts()
        self._known_queues: set[str] = set()

    @property
    def url(self) -> str:
        return self.clients.url

    def _run(self, call: Call) -> Any:
        script, keys, args = call
        return script(self.clients.direct, keys, args)

    async def _arun(self, call: Call) -> Any:
        script, keys, args = call
        return await script.acall(self.clients.aio, keys, args)

    # -- producing ---------------------------------------------------------

    def _enqueue(self, queue: str, job_id: str, when: When, fields: Sequence) -> Call:
        k = queue_keys(queue)
        keys = [k.job(job_id), k.ready, k.scheduled, k.marker, k.prioritized, k.priority_seq]
        return self.scripts.enqueue, keys, [job_id, *when, *fields]

    def enqueue(self, queue: str, job_id: str, when: When, fields: Sequence) -> Any:
        """Add one job; ``when`` is (delay ms, priority). Returns 1, or the
        state of the job already holding the id."""
        self._register_queue(queue)
        return self._run(self._enqueue(queue, job_id, when, fields))

    async def aenqueue(self, queue: str, job_id: str, when: When, fields: Sequence) -> Any:
        await self._aregister_queue(queue)
        return await self._arun(self._enqueue(queue, job_id, when, fields))

    def _enqueue_many(self, queue: str, when: When, jobs: Sequence[tuple[str, list]]) -> Call:
        k = queue_keys(queue)
        args: list[Any] = [*when, len(jobs[0][1])]
        for job_id, fields in jobs:
            args.append(job_id)
            args.extend(fields)
        keys = [k.job_prefix, k.ready, k.scheduled, k.marker, k.prioritized, k.priority_seq]
        return self.scripts.enqueue_many, keys, args

    def enqueue_many(self, queue: str, when: When, jobs: Sequence[tuple[str, list]]) -> list:
        """Add a batch of jobs (all with the same fields) in one round trip."""
        self._register_queue(queue)
        return self._run(self._enqueue_many(queue, when, jobs))

    async def aenqueue_many(self, queue: str, when: When, jobs: Sequence) -> list:
        await self._aregister_queue(queue)
        return await self._arun(self._enqueue_many(queue, when, jobs))

    def _register_queue(self, queue: str) -> None:
        # The registry is a global key, outside the queue's slot: a separate
        # command, sent once per process and queue.
        if queue not in self._known_queues:
            self.clients.sync.sadd(QUEUES, queue)
            self._known_queues.add(queue)

    async def _aregister_queue(self, queue: str) -> None:
        if queue not in self._known_queues:
            await self.clients.aio.sadd(QUEUES, queue)
            self._known_queues.add(queue)

    # -- reading jobs and queues --------------------------------------------

    def job(self, queue: str, job_id: str) -> dict[str, bytes] | None:
        raw = self.clients.sync.hgetall(queue_keys(queue).job(job_id))
        return decode_hash(raw) if raw else None

    async def ajob(self, queue: str, job_id: str) -> dict[str, bytes] | None:
        raw = await self.clients.aio.hgetall(queue_keys(queue).job(job_id))
        return decode_hash(raw) if raw else None

    def find_queue(self, job_id: str) -> str | None:
        """The queue holding a job id (a search over every known queue)."""
        queues = self.queues()
        pipe = self.clients.sync.pipeline(transaction=False)
        for queue in queues:
            pipe.exists(queue_keys(queue).job(job_id))
        for queue, found in zip(queues, pipe.execute(), strict=True):
            if found:
                return queue
        return None

    def queues(self) -> list[str]:
        return sorted(q.decode() for q in self.clients.sync.smembers(QUEUES))

    def counts(self, queue: str) -> dict[str, int]:
        k = queue_keys(queue)
        pipe = self.clients.sync.pipeline(transaction=False)
        pipe.llen(k.ready).zcard(k.prioritized).zcard(k.scheduled).zcard(k.active)
        pipe.zcard(k.completed).zcard(k.failed)
        ready, prioritized, scheduled, active, completed, failed = pipe.execute()
        return {
            "queued": ready + prioritized,
            "scheduled": scheduled,
            "active": active,
            "completed": completed,
            "failed": failed,
        }

    def purge(self, queue: str) -> int:
        """Delete a queue's jobs and indexes (jobs running now finish, unrecorded)."""
        k = queue_keys(queue)
        client = self.clients.sync
        deleted = 0
        batch = [k.ready, k.prioritized, k.priority_seq, k.scheduled, k.active, k.completed,
                 k.failed, k.marker]  # fmt: skip
        for key in client.scan_iter(match=k.job_prefix + "*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += client.delete(*batch)
                batch = []
        return deleted + client.delete(*batch)

    def pause(self, queue: str) -> None:
        self._run((self.scripts.pause, [queue_keys(queue).paused], []))

    def resume(self, queue: str) -> bool:
        k = queue_keys(queue)
        return self._run((self.scripts.resume, [k.paused, k.marker], [])) == 1

    def is_paused(self, queue: str) -> bool:
        return bool(self.clients.sync.exists(queue_keys(queue).paused))

    def failed_ids(self, queue: str, limit: int = 100) -> list[str]:
        ids = self.clients.sync.zrevrange(queue_keys(queue).failed, 0, limit - 1)
        return [i.decode() for i in ids]

    # -- changing one job from outside a worker --------------------------------

    def _retry(self, queue: str, job_id: str) -> Call:
        k = queue_keys(queue)
        keys = [k.job(job_id), k.ready, k.failed, k.marker, k.prioritized, k.priority_seq]
        return self.scripts.retry, keys, [job_id]

    def retry(self, queue: str, job_id: str) -> Any:
        """Re-queue a failed job. Returns 1, or the job's state ('' if missing)."""
        return self._run(self._retry(queue, job_id))

    async def aretry(self, queue: str, job_id: str) -> Any:
        return await self._arun(self._retry(queue, job_id))

    # -- progress, reported by a running job -----------------------------------

    def _progress(self, queue: str, job_id: str, token: bytes, progress: bytes) -> Call:
        return self.scripts.progress, [queue_keys(queue).job(job_id)], [token, progress]

    def progress(self, queue: str, job_id: str, token: bytes, progress: bytes) -> bool:
        """Store a running attempt's progress; False if it no longer holds the job."""
        return self._run(self._progress(queue, job_id, token, progress)) == 1

    async def aprogress(self, queue: str, job_id: str, token: bytes, progress: bytes) -> bool:
        return await self._arun(self._progress(queue, job_id, token, progress)) == 1

    def _cancel(self, queue: str, job_id: str, keep_ms: int) -> Call:
        k = queue_keys(queue)
        keys = [k.job(job_id), k.ready, k.prioritized, k.scheduled, k.active,
                k.done_signal(job_id)]  # fmt: skip
        return self.scripts.cancel, keys, [job_id, keep_ms]

    def cancel(self, queue: str, job_id: str, keep_ms: int) -> Any:
        """Cancel a job that has not ended: 1, or its state (b'' if missing)."""
        return self._run(self._cancel(queue, job_id, keep_ms))

    async def acancel(self, queue: str, job_id: str, keep_ms: int) -> Any:
        return await self._arun(self._cancel(queue, job_id, keep_ms))

    # -- cron -----------------------------------------------------------------------

    async def time_ms(self) -> int:
        """Now, in ms since the epoch, on the Redis server's clock: the one clock
        every due time is judged by."""
        seconds, micros = await self.clients.aio.time()
        return seconds * 1000 + micros // 1000

    async def cron_schedule(
        self, queue: str, task: str, id_prefix: str, previous: int, next_tick: int,
        lead_ms: int, fields: Sequence,
    ) -> tuple[int, int, int]:  # fmt: skip
        """Keep a cron task's next tick scheduled (cron_schedule.lua): ticks are
        seconds since the epoch, and a tick's job id is ``id_prefix`` + tick.
        Returns the ticks (0 for none) merged into a run still waiting, run now
        to catch up, and scheduled."""
        await self._aregister_queue(queue)
        k = queue_keys(queue)
        keys = [k.cron_mark(task), k.cron_run(task), k.job_prefix, k.done_prefix, k.ready,
                k.scheduled, k.marker, k.prioritized, k.priority_seq]  # fmt: skip
        args = [id_prefix, previous, next_tick, lead_ms, *fields]
        reply = await self._arun((self.scripts.cron_schedule, keys, args))
        merged, caught_up, scheduled = (int(tick) for tick in reply)
        return merged, caught_up, scheduled

    # -- waiting for a job's end ----------------------------------------------

    def _wait(self, queue: str, job_id: str) -> Call:
        return self.scripts.wait, [queue_keys(queue).job(job_id)], []

    def wait(self, queue: str, job_id: str, timeout: float | None) -> bytes:
        """Block until the job is final or ``timeout`` seconds pass (None: no
        limit, 0: just look); return its state (b'' if there is no such job).

        The job's end pushes one token per registered waiter. A token left by
        a waiter that gave up can wake a later one early, so every wake-up
        looks again, and waits again for the time that is left."""
        deadline = None if timeout is None else time.monotonic() + timeout
        signal = queue_keys(queue).done_signal(job_id)
        while True:
            state = self._run(self._wait(queue, job_id))
            left = time_left(deadline)
            if state in FINAL_STATES or state == b"" or left == 0:
                return state
            self.clients.sync.blpop([signal], timeout=left)

    async def await_(self, queue: str, job_id: str, timeout: float | None) -> bytes:
        deadline = None if timeout is None else time.monotonic() + timeout
        signal = queue_keys(queue).done_signal(job_id)
        while True:
            state = await self._arun(self._wait(queue, job_id))
            left = time_left(deadline)
            if state in FINAL_STATES or state == b"" or left == 0:
                return state
            await self.clients.aio.blpop([signal], timeout=left)

    # -- the worker's calls (asyncio) ---------------------------------------

    def _fetch(self, queue, worker_id, want, lease_ms, max_stalls, outcomes) -> Call:
        k = queue_keys(queue)
        keys = [k.job_prefix, k.ready, k.active, k.scheduled, k.completed, k.failed, k.marker,
                k.done_prefix, k.prioritized, k.priority_seq, k.paused]  # fmt: skip
        args: list[Any] = [worker_id, lease_ms, want, max_stalls, len(outcomes)]
        for outcome in outcomes:
            args.extend(outcome)
        return self.scripts.fetch, keys, args

    async def fetch(
        self,
        queue: str,
        worker_id: str,
        *,
        want: int,
        lease_ms: int,
        max_stalls: int,
        outcomes: Sequence[tuple[str, bytes, str, bytes, int]] = (),
    ) -> Fetched:
        """Record outcomes and lease up to ``want`` jobs, in one call."""
        call = self._fetch(queue, worker_id, want, lease_ms, max_stalls, outcomes)
        return parse_fetched(await self._arun(call))

    async def wait_then_fetch(
        self, blocker, queues: Sequence[str], timeout: float, worker_id: str, *,
        want: int, lease_ms: int, max_stalls: int,
    ) -> tuple[list[tuple[str, Fetched]], list[Exception]]:  # fmt: skip
        """Block on the queues' markers (on ``blocker``, a connection of its own)
        until a producer or worker signals a change or ``timeout`` seconds pass,
        then lease up to ``want`` jobs from each queue, in the same round trip:
        Redis runs the fetches queued behind the blocking pop as soon as it
        returns. The caller hands back what it cannot run. Returns what each
        queue leased, and the errors of the queues whose call failed."""
        markers = [queue_keys(q).marker for q in queues]
        pipe = blocker.pipeline(transaction=False)
        pipe.bzpopmin(markers, timeout=max(timeout, 0.001))
        calls = [self._fetch(q, worker_id, want, lease_ms, max_stalls, ()) for q in queues]
        for script, keys, args in calls:
            pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
        replies = await pipe.execute(raise_on_error=False)
        if isinstance(replies[0], Exception):
            raise replies[0]
        if any(isinstance(r, NoScriptError) for r in replies):
            for script, _, _ in calls:  # the server lost its scripts (restart)
                await blocker.execute_command("SCRIPT", "LOAD", script.source)
        # Jobs leased from some queues stand even if another queue's call failed.
        fetched, errors = [], []
        for queue, reply in zip(queues, replies[1:], strict=True):
            if not isinstance(reply, Exception):
                fetched.append((queue, parse_fetched(reply)))
            elif not isinstance(reply, NoScriptError):  # the exchange loop retries
                errors.append(reply)
        return fetched, errors

    async def unblock(self, blocker_id: int) -> None:
        """End another connection's blocking wait at once (as if it timed out)."""
        await self.clients.aio.client_unblock(blocker_id)

    async def heartbeat(self, queue: str, lease_ms: int, leases: Iterable[tuple[str, bytes]]):
        """Renew this worker's leases in a queue; returns the ids it lost."""
        k = queue_keys(queue)
        args: list[Any] = [lease_ms]
        for job_id, token in leases:
            args += (job_id, token)
        lost = await self.scripts.heartbeat.acall(self.clients.aio, [k.job_prefix, k.active], args)
        return [i.decode() for i in lost]

    async def recover(self, queue: str, *, limit: int = 1000, max_stalls: int) -> int:
        k = queue_keys(queue)
        keys = [k.job_prefix, k.ready, k.active, k.failed, k.marker, k.done_prefix]
        return await self.scripts.recover.acall(self.clients.aio, keys, [limit, max_stalls])

    async def requeue(self, queue: str, leases: Iterable[tuple[str, bytes]]) -> int:
        k = queue_keys(queue)
        args = [x for lease in leases for x in lease]
        keys = [k.job_prefix, k.ready, k.active, k.marker]
        return await self.scripts.requeue.acall(self.clients.aio, keys, args)

    def blocking_client(self):
        """A connection of its own for blocking calls, so they delay nothing else.
        One connection in all, so that its id (for CLIENT UNBLOCK) is the one a
        pipeline sent on it blocks."""
        return async_client(self.url, retries=0, max_connections=1)

    # -- the registry of workers ----------------------------------------------

    async def register_worker(self, worker_id: str, info: dict[str, Any], ttl_ms: int) -> None:
        pipe = self.clients.aio.pipeline(transaction=False)
        pipe.sadd(QUEUES, *info["queues"].split(","))
        pipe.hset(worker_key(worker_id), mapping=info)
        pipe.pexpire(worker_key(worker_id), ttl_ms)
        pipe.sadd(WORKERS, worker_id)
        await pipe.execute()

    async def beat_worker(self, worker_id: str, ttl_ms: int, running: int) -> None:
        pipe = self.clients.aio.pipeline(transaction=False)
        pipe.hset(worker_key(worker_id), "running", running)
        pipe.pexpire(worker_key(worker_id), ttl_ms)
        await pipe.execute()

    async def unregister_worker(self, worker_id: str) -> None:
        pipe = self.clients.aio.pipeline(transaction=False)
        pipe.delete(worker_key(worker_id)).srem(WORKERS, worker_id)
        await pipe.execute()

    def workers(self) -> list[dict[str, str]]:
        """Live workers; those whose registration expired (dead) are pruned."""
        client = self.clients.sync
        ids = sorted(i.decode() for i in client.smembers(WORKERS))
        pipe = client.pipeline(transaction=False)
        for worker_id in ids:
            pipe.hgetall(worker_key(worker_id))
        live = []
        for worker_id, raw in zip(ids, pipe.execute(), strict=True):
            if raw:
                live.append({k.decode(): v.decode() for k, v in raw.items()} | {"id": worker_id})
            else:
                client.srem(WORKERS, worker_id)
        return live
