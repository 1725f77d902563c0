"""The only code that sends commands to Redis.

Each operation builds its script call (or command) once and runs it from sync
code (``op``) or asyncio code (``await aop``). Replies come back as plain
Python values; key names never leave this package.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from redis.exceptions import NoScriptError

from .connection import Clients, async_client
from .keys import QUEUES, WORKERS, job_ref, queue_keys, split_ref, worker_key
from .replies import Fetched, decode_hash, parse_fetched, time_left
from .scripts import Script, scripts

Call = tuple[Script, Sequence[str], list[Any]]
When = tuple[int, int, str]  # (delay in ms, priority, key): 0, 0, "" is "now, plain"
Window = tuple[str, int, str]  # ('' | 'throttle' | 'debounce', ms, what it is per)
NO_WINDOW: Window = ("", 0, "")
NO_LIMITS = (0, 0, 0, 0, 0, 0)  # see QueueSettings.as_args (tarefa.limits)
CANCELLED_KEEP_MS = 86_400_000  # how long a job cancelled with its parent is kept
WAITING_CHECK_MS = 30_000  # how often a waiting job's parents are checked (safety net)

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

    def _enqueue(self, queue, job_id, when: When, window: Window, waits, fields) -> Call:
        args = [job_id, *when, *window, waits, *fields]
        return self.scripts.enqueue, queue_keys(queue).script_keys, args

    def enqueue(
        self, queue: str, job_id: str, when: When, fields: Sequence, window: Window = NO_WINDOW,
        waits: int = 0,
    ) -> Any:  # fmt: skip
        """Add one job (waiting for ``waits`` others, see ``wait_for``). Returns
        1; or the state of the job already holding the id; or [id, state] of
        the job a throttle or debounce window kept."""
        self._register_queue(queue)
        return self._run(self._enqueue(queue, job_id, when, window, waits, fields))

    async def aenqueue(
        self, queue: str, job_id: str, when: When, fields: Sequence, window: Window = NO_WINDOW,
        waits: int = 0,
    ) -> Any:  # fmt: skip
        await self._aregister_queue(queue)
        return await self._arun(self._enqueue(queue, job_id, when, window, waits, fields))

    def _enqueue_many(self, queue: str, when: When, jobs: Sequence[tuple[str, list]]) -> Call:
        args: list[Any] = [*when, 0, len(jobs[0][1])]
        for job_id, fields in jobs:
            args.append(job_id)
            args.extend(fields)
        return self.scripts.enqueue_many, queue_keys(queue).script_keys, args

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
        pipe.zcard(k.completed).zcard(k.failed).zcard(k.waiting)
        ready, prioritized, scheduled, active, completed, failed, waiting = pipe.execute()
        # Keyed jobs are counted per lane: one call per key with ready jobs.
        lanes = pipe.zrange(k.lanes, 0, -1).zrange(k.lanes_waiting, 0, -1).execute()
        keys = set(lanes[0]) | set(lanes[1]) | set(pipe.hkeys(k.lane_active).execute()[0])
        for key in keys:
            pipe.llen(k.lane(key.decode()))
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
        Kept: the paused flag, cron marks and rate-limit logs (a purge must not
        reset a limit). Jobs running now finish; their outcomes are discarded.
        Returns how many keys were deleted."""
        k = queue_keys(queue)
        kept = {k.paused, k.rate}
        kept_prefixes = (k.cron_prefix, k.lane_rate_prefix)
        client = self.clients.sync
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
        self._run((self.scripts.pause, queue_keys(queue).script_keys, []))

    def resume(self, queue: str) -> bool:
        return self._run((self.scripts.resume, queue_keys(queue).script_keys, [])) == 1

    def is_paused(self, queue: str) -> bool:
        return bool(self.clients.sync.exists(queue_keys(queue).paused))

    def failed_ids(self, queue: str, limit: int = 100) -> list[str]:
        ids = self.clients.sync.zrevrange(queue_keys(queue).failed, 0, limit - 1)
        return [i.decode() for i in ids]

    # -- changing one job from outside a worker --------------------------------

    def _retry(self, queue: str, job_id: str) -> Call:
        return self.scripts.retry, queue_keys(queue).script_keys, [job_id]

    def retry(self, queue: str, job_id: str) -> Any:
        """Re-queue a failed job. Returns 1, or the job's state ('' if missing)."""
        return self._run(self._retry(queue, job_id))

    async def aretry(self, queue: str, job_id: str) -> Any:
        return await self._arun(self._retry(queue, job_id))

    # -- progress, reported by a running job -----------------------------------

    def _progress(self, queue: str, job_id: str, token: bytes, progress: bytes) -> Call:
        return self.scripts.progress, queue_keys(queue).script_keys, [job_id, token, progress]

    def progress(self, queue: str, job_id: str, token: bytes, progress: bytes) -> bool:
        """Store a running attempt's progress; False if it no longer holds the job."""
        return self._run(self._progress(queue, job_id, token, progress)) == 1

    async def aprogress(self, queue: str, job_id: str, token: bytes, progress: bytes) -> bool:
        return await self._arun(self._progress(queue, job_id, token, progress)) == 1

    def _cancel(self, queue: str, job_id: str, keep_ms: int) -> Call:
        return self.scripts.cancel, queue_keys(queue).script_keys, [job_id, keep_ms]

    def cancel(self, queue: str, job_id: str, keep_ms: int) -> Any:
        """Cancel a job that has not ended, and the jobs waiting for it: 1, or
        its state (b'' if missing)."""
        reply = self._run(self._cancel(queue, job_id, keep_ms))
        if isinstance(reply, list):
            self.resolve(job_ref(queue, job_id), "cancelled", b"", _refs(reply[1]))
            return 1
        return reply

    async def acancel(self, queue: str, job_id: str, keep_ms: int) -> Any:
        reply = await self._arun(self._cancel(queue, job_id, keep_ms))
        if isinstance(reply, list):
            await self.aresolve(job_ref(queue, job_id), "cancelled", b"", _refs(reply[1]))
            return 1
        return reply

    # -- jobs waiting for jobs (chains, groups) --------------------------------
    #
    # A job enqueued with parents waits (state 'waiting') until each parent
    # has ended and been reported to it (resolve.lua). A parent's end is
    # reported by its worker right after recording it, by the producer when the
    # parent had already ended, and, as a safety net, by the periodic check of
    # waiting jobs (check_waiting). Parents may be in other queues (other
    # cluster slots), so these steps are separate calls, each idempotent.

    def _add_dependent(self, parent: str, children: list[str]) -> Call:
        queue, parent_id = split_ref(parent)
        return self.scripts.add_dependent, queue_keys(queue).script_keys, [parent_id, *children]

    def _parent_end(self, parent: str) -> tuple[str, bytes] | None:
        """How a parent that is no longer running ended: (outcome, result)."""
        queue, parent_id = split_ref(parent)
        state, result = self.clients.sync.hmget(queue_keys(queue).job(parent_id), "state", "result")
        return _ended(state, result)

    async def _aparent_end(self, parent: str) -> tuple[str, bytes] | None:
        queue, parent_id = split_ref(parent)
        key = queue_keys(queue).job(parent_id)
        return _ended(*await self.clients.aio.hmget(key, "state", "result"))

    def wait_for(self, child: str, parents: Sequence[str]) -> None:
        """Have ``child`` (enqueued waiting) told when each parent ends."""
        for parent in parents:
            if self._run(self._add_dependent(parent, [child])) != 1:  # it has ended
                self.resolve(parent, *self._parent_end(parent), [child])

    async def await_for(self, child: str, parents: Sequence[str]) -> None:
        for parent in parents:
            if await self._arun(self._add_dependent(parent, [child])) != 1:
                await self.aresolve(parent, *await self._aparent_end(parent), [child])

    def _resolve(self, child: str, parent: str, outcome: str, result: bytes) -> Call:
        queue, child_id = split_ref(child)
        args = [child_id, parent, outcome, result, CANCELLED_KEEP_MS]
        return self.scripts.resolve, queue_keys(queue).script_keys, args

    def resolve(self, parent: str, outcome: str, result: bytes, children: list[str]) -> None:
        """Report a parent's end to the jobs waiting for it, and, when that
        cancels them, theirs to the jobs waiting for them, and so on."""
        todo = [(parent, outcome, result, children)]
        while todo:
            parent, outcome, result, children = todo.pop()
            for child in children:
                reply = self._run(self._resolve(child, parent, outcome, result))
                if reply[0] == b"cancelled":
                    todo.append((child, "cancelled", b"", _refs(reply[1])))

    async def aresolve(self, parent: str, outcome: str, result: bytes, children: list[str]):
        todo = [(parent, outcome, result, children)]
        while todo:
            parent, outcome, result, children = todo.pop()
            for child in children:
                reply = await self._arun(self._resolve(child, parent, outcome, result))
                if reply[0] == b"cancelled":
                    todo.append((child, "cancelled", b"", _refs(reply[1])))

    async def check_waiting(self, queue: str, limit: int = 100) -> int:
        """Resolve the waiting jobs due a check whose parents have ended
        unreported. Returns how many parents' ends were reported."""
        keys = queue_keys(queue).script_keys
        flat = await self.scripts.check_waiting.acall(
            self.clients.aio, keys, [limit, WAITING_CHECK_MS]
        )
        reported = 0
        for i in range(0, len(flat), 2):
            child = job_ref(queue, flat[i].decode())
            for parent in orjson.loads(flat[i + 1]).get("parents", []):
                ended = await self._aparent_end(parent)
                if ended is not None:
                    await self.aresolve(parent, *ended, [child])
                    reported += 1
        return reported

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
        args = [task, id_prefix, previous, next_tick, lead_ms, *fields]
        call = (self.scripts.cron_schedule, queue_keys(queue).script_keys, args)
        merged, caught_up, scheduled = (int(tick) for tick in await self._arun(call))
        return merged, caught_up, scheduled

    # -- waiting for a job's end ----------------------------------------------

    def _wait(self, queue: str, job_id: str) -> Call:
        return self.scripts.wait, queue_keys(queue).script_keys, [job_id]

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

    def _fetch(self, queue, worker_id, want, lease_ms, max_stalls, limits, outcomes) -> Call:
        args: list[Any] = [worker_id, lease_ms, want, max_stalls, *limits, len(outcomes)]
        for outcome in outcomes:
            args.extend(outcome)
        return self.scripts.fetch, queue_keys(queue).script_keys, args

    async def fetch(
        self,
        queue: str,
        worker_id: str,
        *,
        want: int,
        lease_ms: int,
        max_stalls: int,
        limits: Sequence[int] = NO_LIMITS,
        outcomes: Sequence[tuple[str, bytes, str, bytes, int]] = (),
    ) -> Fetched:
        """Record outcomes and lease up to ``want`` jobs within the queue's
        ``limits``, in one call."""
        call = self._fetch(queue, worker_id, want, lease_ms, max_stalls, limits, outcomes)
        return parse_fetched(await self._arun(call))

    async def wait_then_fetch(
        self, blocker, queues: Sequence[str], timeout: float, worker_id: str, *,
        want: int, lease_ms: int, max_stalls: int, limits=lambda queue: NO_LIMITS,
    ) -> tuple[list[tuple[str, Fetched]], list[Exception]]:  # fmt: skip
        """Block on the queues' markers (on ``blocker``, a connection of its own)
        until a producer or worker signals a change or ``timeout`` seconds pass,
        then lease up to ``want`` jobs from each queue, in the same round trip:
        Redis runs the fetches queued behind the blocking pop as soon as it
        returns. The caller hands back what it cannot run. Returns what each
        queue leased, and the errors of the queues whose call failed.
        ``limits(queue)`` gives each queue's limits."""
        markers = [queue_keys(q).marker for q in queues]
        pipe = blocker.pipeline(transaction=False)
        pipe.bzpopmin(markers, timeout=max(timeout, 0.001))
        calls = [
            self._fetch(q, worker_id, want, lease_ms, max_stalls, limits(q), ()) for q in queues
        ]
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
        args: list[Any] = [lease_ms]
        for job_id, token in leases:
            args += (job_id, token)
        keys = queue_keys(queue).script_keys
        lost = await self.scripts.heartbeat.acall(self.clients.aio, keys, args)
        return [i.decode() for i in lost]

    async def recover(self, queue: str, *, limit: int = 1000, max_stalls: int) -> int:
        keys = queue_keys(queue).script_keys
        return await self.scripts.recover.acall(self.clients.aio, keys, [limit, max_stalls])

    async def requeue(self, queue: str, leases: Iterable[tuple[str, bytes]]) -> int:
        args = [x for lease in leases for x in lease]
        keys = queue_keys(queue).script_keys
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


def _refs(raw: list[bytes]) -> list[str]:
    return [r.decode() for r in raw]


def _ended(state: bytes | None, result: bytes | None) -> tuple[str, bytes] | None:
    """A parent's end as resolve.lua takes it; None while it has not ended. A
    parent that no longer exists counts as completed: a completed job's record
    expires with its result (result_ttl), a failed one is kept until deleted."""
    if state is None:
        return "completed", b""
    if state in FINAL_STATES:
        return state.decode(), result or b""
    return None
