"""Durable enqueues (``durable=True``): WAITAOF after the enqueue script, in
the same round trip, and, on a replicated Redis, WAIT for its replicas.

``WAITAOF 1 0 <ms>`` blocks the connection that sends it until the local
append-only file has been fsynced past every write that connection made, or
the time runs out; it answers ``[local, replicas]``: ``local`` is 1 once the
fsync happened. Sent right after the script, on the same connection (a
pipeline, no transaction), it covers the job's write. Redis 7.2 has it (so has
Valkey, from 7.2); an older server does not know the command, and a server
without an append-only file refuses it.

``WAIT <replicas> <ms>`` then blocks until that many replicas have
acknowledged every write of the connection, and answers how many did. Redis
replicates asynchronously: a failover loses what the promoted replica had
not received, so a job that one replica acknowledged survives the death of
its master. The number asked is the store's ``durable_replicas``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis import exceptions as redis_errors

from ..errors import DurableUnsupported, NotDurable
from .base import MOVED, Call, StoreBase
from .connection import Clients, redacted

WAIT = 2.0  # seconds a durable enqueue waits for the fsync (below the reply timeout)
# Asks nothing (0 local, 0 replicas): answers at once where WAITAOF exists.
PROBE = ("WAITAOF", 0, 0, 1)


def wait_ms(reply_timeout: float) -> int:
    """How long WAITAOF may wait: ``WAIT``, and always well within the client's
    reply timeout, so the fsync's answer arrives before the socket gives up."""
    return max(1, round(min(WAIT, reply_timeout * 2 / 3) * 1000))


def waitaof(reply_timeout: float) -> tuple[str, int, int, int]:
    return ("WAITAOF", 1, 0, wait_ms(reply_timeout))


def wait_replicas(replicas: int, reply_timeout: float) -> tuple[str, int, int]:
    return ("WAIT", replicas, wait_ms(reply_timeout))


def unsupported(url: str, version: str) -> DurableUnsupported:
    return DurableUnsupported(
        f"durable enqueues need WAITAOF, which Redis has from 7.2 on (Valkey too); the "
        f"Redis at {redacted(url)} is {version}: nothing was enqueued. Upgrade it, or "
        "keep durability in the server instead: `appendonly yes` with `appendfsync "
        "always` fsyncs every write before Redis answers, and enqueue without durable"
    )


def not_fsynced(
    reply: object, url: str, reply_timeout: float, job_ids: Sequence[str]
) -> NotDurable | None:
    """The error to raise when ``reply`` (WAITAOF's) does not say the local
    fsync happened; None when it does."""
    if isinstance(reply, list) and reply and reply[0] >= 1:
        return None
    if isinstance(reply, Exception):
        why = (
            f"Redis answered WAITAOF with {str(reply)!r} (is its append-only file off, "
            "`appendonly no`?). Turn on `appendonly yes`, or enqueue without durable"
        )
    else:
        why = (
            f"Redis did not fsync its append-only file within {wait_ms(reply_timeout) / 1000:g} "
            "s (a slow or stalled disk? `appendfsync no`, which leaves it to the OS?), so a "
            "crash of its machine before the next fsync could lose it"
        )
    return _not_durable(why, url, job_ids)


def not_replicated(
    reply: object, replicas: int, url: str, reply_timeout: float, job_ids: Sequence[str]
) -> NotDurable | None:
    """The error to raise when ``reply`` (WAIT's) counts fewer replicas than
    ``replicas``; None when enough acknowledged the write."""
    if isinstance(reply, int) and reply >= replicas:
        return None
    if isinstance(reply, Exception):
        why = f"Redis answered WAIT with {str(reply)!r}"
    else:
        why = (
            f"{reply} of the {replicas} replica(s) asked for acknowledged it within "
            f"{wait_ms(reply_timeout) / 1000:g} s, so a failover now could lose it (Redis "
            "replicates asynchronously). Check the replicas (INFO replication), or ask "
            "fewer with App(durable_replicas=N)"
        )
    return _not_durable(why, url, job_ids)


def _not_durable(why: str, url: str, job_ids: Sequence[str]) -> NotDurable:
    what = f"job {job_ids[0]} was" if len(job_ids) == 1 else f"{len(job_ids)} jobs were"
    why = f"{why} (Redis at {redacted(url)})"
    return NotDurable(f"{what} enqueued, but may not be durable: {why}", job_ids, why)


class DurableCalls(StoreBase):
    """How the store runs a durable call: the script, then WAITAOF (and WAIT),
    on one connection, in one round trip."""

    def _durability(self) -> list[tuple[str | int, ...]]:
        """What follows a durable call on its connection: WAITAOF, and WAIT
        for the replicas asked for, if any."""
        timeout, replicas = self.clients.timeout, self.durable_replicas
        return [waitaof(timeout), *([wait_replicas(replicas, timeout)] if replicas else [])]

    def _run_durable(self, call: Call, job_ids: list[str]) -> Any:
        """Run a script, then WAITAOF (and WAIT) on the same connection, in one
        round trip (on a cluster, a connection to the node of the queue's slot)."""
        queue = call[1]
        if self.clients.is_cluster:
            replies = self._at_node(queue.ready, lambda node: self._durably(node, call))
        else:
            replies = self._durably(self.clients, call)
        if isinstance(replies[0], Exception):
            raise replies[0]
        return self._durable_reply(replies, job_ids)

    def _durably(self, clients: Clients, call: Call) -> list[Any]:
        self._check_waitaof(clients)
        script, queue, args = call
        direct = clients.direct
        replies = direct.pipeline(script.packed(queue, args), *self._durability())
        if isinstance(replies[0], redis_errors.NoScriptError):  # the server restarted
            direct.execute_command("SCRIPT", "LOAD", script.source)
            replies = direct.pipeline(script.packed(queue, args), *self._durability())
        if isinstance(replies[0], MOVED):
            raise replies[0]  # (for _at_node)
        return replies

    async def _arun_durable(self, call: Call, job_ids: list[str]) -> Any:
        queue = call[1]
        if self.clients.is_cluster:
            replies = await self._aat_node(queue.ready, lambda node: self._adurably(node, call))
        else:
            replies = await self._adurably(self.clients, call)
        if isinstance(replies[0], Exception):
            raise replies[0]
        return self._durable_reply(replies, job_ids)

    async def _adurably(self, clients: Clients, call: Call) -> list[Any]:
        await self._acheck_waitaof(clients)
        script, queue, args = call
        for _ in range(2):
            pipe = clients.aio.pipeline(transaction=False)
            pipe.execute_command(*script.command(queue, args))
            for command in self._durability():
                pipe.execute_command(*command)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
            if not isinstance(replies[0], redis_errors.NoScriptError):
                break
            await clients.aio.script_load(script.source)
        if isinstance(replies[0], MOVED):
            raise replies[0]  # (for _aat_node)
        return replies

    def _durable_reply(self, replies: list[Any], job_ids: list[str]) -> Any:
        """The script's reply, once WAITAOF's says the write is on disk and
        WAIT's that enough replicas have it; else ``NotDurable``, carrying the
        script's reply (the job was enqueued)."""
        url, timeout = self.clients.url, self.clients.timeout
        error = not_fsynced(replies[1], url, timeout, job_ids)
        if error is None and len(replies) > 2:
            error = not_replicated(replies[2], self.durable_replicas, url, timeout, job_ids)
        if error is not None:
            error.reply = replies[0]
            raise error
        return replies[0]

    def _check_waitaof(self, clients: Clients) -> None:
        """Once per store: refuse durable before sending anything where the
        server has no WAITAOF."""
        if self._waitaof is None:
            try:
                clients.direct.execute_command(*PROBE)
                self._waitaof = True
            except redis_errors.ResponseError as exc:
                if "unknown command" not in str(exc).lower():
                    raise  # e.g. an ACL that forbids it: say so, as Redis does
                self._waitaof = False
        if not self._waitaof:
            version = clients.sync.info("server").get("redis_version", "unknown")
            raise unsupported(self.clients.url, f"Redis {version}")

    async def _acheck_waitaof(self, clients: Clients) -> None:
        if self._waitaof is None:
            try:
                await clients.aio.execute_command(*PROBE)
                self._waitaof = True
            except redis_errors.ResponseError as exc:
                if "unknown command" not in str(exc).lower():
                    raise  # e.g. an ACL that forbids it: say so, as Redis does
                self._waitaof = False
        if not self._waitaof:
            version = (await clients.aio.info("server")).get("redis_version", "unknown")
            raise unsupported(self.clients.url, f"Redis {version}")
