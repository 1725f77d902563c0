"""A connection of its own for a worker's blocking wait for work.

The wait is one write: a blocking pop on the queues' markers with a fetch of
each queue behind it, which Redis runs as soon as the pop returns. It goes
out packed already (packing.py) and its replies are read straight off the
connection, without redis-py's pipeline (a pool, a lock, a task to time it,
each command packed in Python): that saved ~100 µs, a round trip or two, off
the time from an enqueue to the start of its job on an idle worker.

The connection has no reply timeout of its own: the pop may rightly last as
long as it was asked. Each wait is timed as a whole instead, and a wait that
fails, times out or is cancelled drops the connection, so no stale reply is
ever read. Nothing is sent again: a fetch whose reply was lost leased jobs
that only a recovery gives back, and a second fetch would lease more.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeout

from .packing import pack
from .sentinel import asks_sentinel

_CLIENT_ID = pack("CLIENT", "ID")


class BlockingConnection:
    """One connection for blocking calls, so they delay nothing else; its
    server-side ``id`` is known while it is connected, for ``CLIENT UNBLOCK``
    from another connection (``client``'s)."""

    def __init__(self, client: redis.asyncio.Redis):
        self.client = client
        pool = client.connection_pool
        settings = dict(pool.connection_kwargs, socket_timeout=None, retry=Retry(NoBackoff(), 0))
        settings.pop("retry_on_error", None)
        self._connection = pool.connection_class(**settings)
        self.id: int | None = None  # the server's id for the connection, once connected

    async def exchange(self, command: bytes, replies: int, timeout: float) -> list[Any]:
        """Send ``command`` (packed: one or more commands) and read its
        ``replies``, an error reply as its exception. Raises a Redis error when
        the connection fails, and ``redis.TimeoutError`` when the replies took
        longer than ``timeout`` s."""
        connection = self._connection
        try:
            async with asyncio.timeout(timeout):
                if not connection.is_connected and asks_sentinel(connection):
                    await connection.connect()
                if self.id is None:
                    # Its id goes in the same write: it is read (and known) before
                    # the pop behind it blocks.
                    await connection.send_packed_command((_CLIENT_ID, command), False)
                    self.id = int(await connection.read_response())
                else:
                    await connection.send_packed_command((command,), False)
                answers: list[Any] = []
                for _ in range(replies):
                    try:
                        answers.append(await connection.read_response())
                    except ResponseError as exc:
                        answers.append(exc)
                return answers
        except TimeoutError:
            await self._drop()
            raise RedisTimeout(f"no reply from Redis within {timeout:g} s") from None
        except BaseException:  # failed or cancelled mid-way: its replies are not to be read
            await self._drop()
            raise

    async def _drop(self) -> None:
        self.id = None  # a new connection gets a new id
        await self._connection.disconnect(nowait=True)

    async def aclose(self) -> None:
        await self._drop()


class NodeBlockers:
    """A Redis Cluster's blocking connections: one per queue, to the node
    that holds the queue's slot. A blocking pop on several keys needs them in
    one slot, and each queue has a slot of its own."""

    def __init__(self) -> None:
        self._connections: dict[str, tuple[redis.asyncio.Redis, BlockingConnection]] = {}

    async def connection(self, queue: str, node: redis.asyncio.Redis) -> BlockingConnection:
        """The queue's connection to ``node``, the client of the node its slot
        is on now; one to another node (before a failover) is dropped."""
        known = self._connections.get(queue)
        if known is not None:
            if known[0] is node:
                return known[1]
            await known[1].aclose()
        connection = BlockingConnection(node)
        self._connections[queue] = node, connection
        return connection

    def connections(self) -> list[BlockingConnection]:
        return [connection for _, connection in self._connections.values()]

    async def aclose(self) -> None:
        for connection in self.connections():
            await connection.aclose()


Blocker = BlockingConnection | NodeBlockers  # a single Redis's, or a cluster's
