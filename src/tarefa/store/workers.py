"""The worker's calls: leasing and reporting jobs, leases, and the registry
of live workers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from redis.exceptions import NoScriptError

from ..limits import DEFAULT_SETTINGS, QueueSettings
from ..records import AttemptOutcome, Fetched, LostLease, Recovery
from .base import Call, StoreBase, is_full
from .blocking import Blocker, BlockingConnection, NodeBlockers
from .keys import QUEUES, WORKERS, queue_keys, worker_key
from .packing import pack
from .replies import parse_fetched, parse_lost_leases, parse_recovery, undecoded
from .tokens import token_base

# -- arguments as the scripts take them ---------------------------------------


@cache  # (settings are frozen, and a worker sends the same ones with every fetch)
def limit_args(settings: QueueSettings) -> tuple[int, ...]:
    """A queue's settings as fetch.lua takes them (ARGV[5-12]; 0: none)."""
    rate = settings.rate_limit or (0, 0)
    key_rate = settings.key_rate_limit or (0, 0)
    limits = (*rate, *key_rate, settings.key_concurrency or 0, settings.keep_completed or 0)
    return limits + dead_letter_args(settings)


def dead_letter_args(settings: QueueSettings) -> tuple[int, int]:
    """The dead-letter set's bounds as the scripts that fail jobs take them:
    (jobs to keep, ms to keep each), 0 for none."""
    ttl_ms = 0 if settings.failed_ttl is None else max(1, int(settings.failed_ttl * 1000))
    return (settings.keep_failed or 0, ttl_ms)


def outcome_args(attempt: AttemptOutcome) -> tuple[str, bytes, str, bytes, int]:
    """The five values fetch.lua takes for each outcome, in its order."""
    outcome = attempt.outcome
    return (attempt.job_id, attempt.token, outcome.kind.value, outcome.value, outcome.ms)


class WorkerCalls(StoreBase):
    """What a worker sends: fetches (with outcomes), heartbeats, recovery,
    hand-backs, and its registration."""

    def _fetch(
        self, queue: str, worker_id: str, want: int, lease_ms: int, max_stalls: int,
        settings: QueueSettings, outcomes: Sequence[AttemptOutcome],
    ) -> Call:  # fmt: skip
        args: list[Any] = [worker_id, lease_ms, want, max_stalls, *limit_args(settings)]
        args += (token_base(), len(outcomes))
        for attempt in outcomes:
            args.extend(outcome_args(attempt))
        return self.scripts.fetch, queue_keys(queue), args

    async def fetch(
        self,
        queue: str,
        worker_id: str,
        *,
        want: int,
        lease_ms: int,
        max_stalls: int,
        settings: QueueSettings = DEFAULT_SETTINGS,
        outcomes: Sequence[AttemptOutcome] = (),
    ) -> Fetched:
        """Record outcomes and lease up to ``want`` jobs within the queue's
        limits (``settings``), in one call."""
        call = self._fetch(queue, worker_id, want, lease_ms, max_stalls, settings, outcomes)
        return parse_fetched(await self._arun(call))

    async def wait_then_fetch(
        self, blocker: Blocker, queues: Sequence[str], timeout: float,
        worker_id: str, *, want: int, lease_ms: int, max_stalls: int,
        settings: Callable[[str], QueueSettings] = lambda queue: DEFAULT_SETTINGS,
    ) -> tuple[list[tuple[str, Fetched]], list[Exception]]:  # fmt: skip
        """Block on the queues' markers (on ``blocker``, a connection of its own)
        until a producer or worker signals a change or ``timeout`` seconds pass,
        then lease up to ``want`` jobs from each queue, in the same round trip:
        Redis runs the fetches queued behind the blocking pop as soon as it
        returns. The caller hands back what it cannot run. Returns what each
        queue leased, and the errors of the queues whose call failed.
        ``settings(queue)`` gives each queue's limits. Raises ``redis.TimeoutError``
        when no reply came in ``timeout`` plus the reply timeout (a hung Redis,
        a partition): the next wait connects afresh."""
        fetches = [
            self._fetch(q, worker_id, want, lease_ms, max_stalls, settings(q), ()) for q in queues
        ]
        if isinstance(blocker, NodeBlockers):
            return await self._wait_on_nodes(blocker, fetches, timeout)
        return await self._wait_then_fetch(blocker, fetches, timeout)

    async def _wait_then_fetch(
        self, blocker: BlockingConnection, calls: list[Call], timeout: float
    ) -> tuple[list[tuple[str, Fetched]], list[Exception]]:
        """The wait on one server: one pop on every queue's marker."""
        queues = [keys.name for _, keys, _ in calls]
        markers = [keys.marker for _, keys, _ in calls]
        commands = [pack("BZPOPMIN", *markers, max(timeout, 0.001))]
        commands += [script.packed(keys, args) for script, keys, args in calls]
        replies = await blocker.exchange(
            b"".join(commands), len(commands), timeout + self.clients.timeout
        )
        if isinstance(replies[0], Exception):
            raise replies[0]
        if any(isinstance(r, NoScriptError) for r in replies):
            for script, _, _ in calls:  # the server lost its scripts (restart)
                await blocker.client.script_load(script.source)
        # Jobs leased from some queues stand even if another queue's call failed.
        fetched: list[tuple[str, Fetched]] = []
        errors: list[Exception] = []
        for queue, reply in zip(queues, replies[1:], strict=True):
            if not isinstance(reply, Exception):
                fetched.append((queue, parse_fetched(reply)))
            elif not isinstance(reply, NoScriptError):  # the exchange loop retries
                errors.append(reply)
        return fetched, errors

    async def _wait_on_nodes(
        self, blockers: NodeBlockers, calls: list[Call], timeout: float
    ) -> tuple[list[tuple[str, Fetched]], list[Exception]]:
        """The wait on a cluster: a wait per queue, on the node of its slot;
        once one returns, the others are ended (CLIENT UNBLOCK), and what
        every one leased is returned. A wait that failed (its node died, its
        slot moved) makes the slot map be read again; raised when nothing was
        leased, so the caller pauses before it waits again."""
        waits = []
        for call in calls:
            node = await self.clients.anode(call[1].marker)
            connection = await blockers.connection(call[1].name, node.aio)
            waits.append(asyncio.ensure_future(self._wait_then_fetch(connection, [call], timeout)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # cancelled: each wait drops its connection, leasing nothing
            for wait in waits:
                wait.cancel()
            raise
        await self.unblock(blockers)
        ends = await asyncio.gather(*waits, return_exceptions=True)
        fetched: list[tuple[str, Fetched]] = []
        errors: list[Exception] = []
        for end in ends:
            if isinstance(end, BaseException):
                errors.append(end if isinstance(end, Exception) else Exception(repr(end)))
            else:
                fetched += end[0]
                errors += end[1]
        if errors:
            await self.clients.areread_slots()
        if errors and not fetched:
            raise errors[0]
        return fetched, errors

    async def unblock(self, blocker: Blocker) -> None:
        """End a blocking wait at once (as if it timed out), from another
        connection; nothing to do when ``blocker`` is not connected."""
        connections = blocker.connections() if isinstance(blocker, NodeBlockers) else [blocker]
        for connection in connections:
            if connection.id is not None:
                await connection.client.client_unblock(connection.id)

    async def heartbeat(
        self, queue: str, lease_ms: int, leases: Iterable[tuple[str, bytes]]
    ) -> list[LostLease]:
        """Renew this worker's leases in a queue; returns the attempts whose
        lease it lost, and why."""
        args: list[Any] = [lease_ms]
        for job_id, token in leases:
            args += (job_id, token)
        lost = await self.scripts.heartbeat.acall(self.clients.aio, queue_keys(queue), args)
        return parse_lost_leases(lost)

    async def recover(
        self, queue: str, *, limit: int = 1000, max_stalls: int,
        settings: QueueSettings = DEFAULT_SETTINGS,
    ) -> Recovery:  # fmt: skip
        """Move expired leases back to ready (or fail the jobs that stalled
        too often): how many expired, the jobs failed by stalls that others
        wait for, the ids of jobs lost, and each job recovered.
        The dead-letter set's bounds in ``settings`` apply as jobs fail here."""
        args = [limit, max_stalls, *dead_letter_args(settings)]
        reply = await self.scripts.recover.acall(self.clients.aio, queue_keys(queue), args)
        return parse_recovery(reply)

    async def requeue(self, queue: str, leases: Iterable[tuple[str, bytes]]) -> int:
        args = [x for lease in leases for x in lease]
        requeued: int = await self.scripts.requeue.acall(self.clients.aio, queue_keys(queue), args)
        return requeued

    async def record_stats(self, queue: str, counts: Mapping[str, int]) -> None:
        """Add a worker's counts (tarefa.stats) to the queue's totals."""
        args = [x for item in counts.items() for x in item]
        await self.scripts.record_stats.acall(self.clients.aio, queue_keys(queue), args)

    def blocking_connection(self) -> Blocker:
        """A connection of its own for ``wait_then_fetch``: on a cluster, one
        per queue."""
        if self.clients.is_cluster:
            return NodeBlockers()
        return BlockingConnection(self.clients.aio)

    # -- the registry of workers ----------------------------------------------

    async def register_worker(self, worker_id: str, info: dict[str, Any], ttl_ms: int) -> bool:
        """List a worker among the live ones, for ``ttl_ms`` unless it beats.
        Returns False when a full Redis refused it (it grows memory): the
        worker runs all the same, and each beat tries again (beat_worker)."""
        self._registrations[worker_id] = info
        pipe = self.clients.aio.pipeline(transaction=False)
        pipe.sadd(QUEUES, *info["queues"].split(","))
        # (the ignore: redis-py types mapping as Mapping[EncodableT, ...], and a
        # Mapping's keys are invariant: it takes no dict of str keys)
        pipe.hset(worker_key(worker_id), mapping=info)  # type: ignore[arg-type]
        pipe.pexpire(worker_key(worker_id), ttl_ms)
        pipe.sadd(WORKERS, worker_id)
        errors = [r for r in await pipe.execute(raise_on_error=False) if isinstance(r, Exception)]
        if errors and all(is_full(e) for e in errors):
            self._unlisted.add(worker_id)
            return False
        if errors:
            raise errors[0]
        self._unlisted.discard(worker_id)
        return True

    async def beat_worker(self, worker_id: str, ttl_ms: int, running: int) -> None:
        """Keep a registered worker listed (beat_worker.lua, which a full
        Redis runs too); register it again if its registration is gone or was
        refused."""
        # beat_at: the worker's clock, for display only (leases use Redis's).
        beat = {"running": running, "beat_at": int(time.time() * 1000)}
        args = [ttl_ms, beat["running"], beat["beat_at"]]
        listed = await self.scripts.beat_worker.acall_on(
            self.clients.aio, [worker_key(worker_id)], args
        )
        info = self._registrations.get(worker_id)
        if (not listed or worker_id in self._unlisted) and info is not None:
            await self.register_worker(worker_id, info | beat, ttl_ms)

    async def unregister_worker(self, worker_id: str) -> None:
        self._registrations.pop(worker_id, None)
        self._unlisted.discard(worker_id)
        pipe = self.clients.aio.pipeline(transaction=False)
        pipe.delete(worker_key(worker_id))
        pipe.srem(WORKERS, worker_id)
        await pipe.execute()

    def workers(self) -> list[dict[str, str]]:
        """Live workers; those whose registration expired (dead) are pruned."""
        client = self.clients.sync
        ids = sorted(i.decode() for i in undecoded(client.smembers(WORKERS)))
        pipe = client.pipeline(transaction=False)
        for worker_id in ids:
            pipe.hgetall(worker_key(worker_id))
        live: list[dict[str, str]] = []
        for worker_id, raw in zip(ids, pipe.execute(), strict=True):
            if raw:
                live.append({k.decode(): v.decode() for k, v in raw.items()} | {"id": worker_id})
            else:
                client.srem(WORKERS, worker_id)
        return live
