"""Per-thread connections for the producer's hot sync calls (enqueue)."""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Sequence
from typing import Any, Protocol

import redis
from redis.retry import Retry
from redis.typing import EncodableT

from . import sentinel


class _Connection(Protocol):
    """What ThreadConnections uses of redis-py's sync connection (which
    leaves these methods unannotated)."""

    retry: Retry

    def pack_command(self, *args: EncodableT) -> list[bytes]: ...

    @property
    def is_connected(self) -> bool: ...

    def connect(self) -> None: ...

    def send_packed_command(self, command: Sequence[bytes]) -> None: ...

    def read_response(self) -> Any: ...

    def disconnect(self) -> None: ...


class ThreadConnections:
    """One connection per thread for the producer's hot calls (enqueue).

    A command goes straight to this thread's socket, skipping the pool lookup,
    locking and instrumentation redis-py's client does per command (about a
    fifth of a round trip). Same connection settings and retry policy as the
    client: a retry sends the very bytes packed for the first attempt. A
    connection is dropped whenever a call is cut short, so no stale reply is
    ever read, and replaced in a forked child. A Sentinel-managed connection
    is connected before its first send (``sentinel.asks_sentinel``), as are
    the asyncio connections of autopipeline.py and blocking.py.
    """

    def __init__(self, client: redis.Redis):
        self._pool = client.connection_pool
        self._local = threading.local()
        # Every thread's connection, for close(); weakly, so that the threads a
        # web server starts and ends do not pile theirs up here.
        self._made: weakref.WeakSet[_Connection] = weakref.WeakSet()

    def _connection(self) -> _Connection:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            local.conn = self._pool.make_connection()
            local.pid = os.getpid()
            self._made.add(local.conn)
        conn: _Connection = local.conn
        return conn

    def close(self) -> None:
        """Disconnect every thread's connection (the pool does not know them:
        a connection left alone would stay open until the garbage collector
        found it)."""
        for conn in list(self._made):
            conn.disconnect()

    def execute_command(self, *args: EncodableT) -> Any:
        return self.execute_packed(b"".join(self._connection().pack_command(*args)))

    def execute_packed(self, packed: bytes) -> Any:
        """Send one command packed already (packing.py) and read its reply."""
        conn = self._connection()

        def send() -> Any:
            if not conn.is_connected and sentinel.asks_sentinel(conn):
                conn.connect()
            conn.send_packed_command((packed,))
            return conn.read_response()

        try:
            return conn.retry.call_with_retry(send, lambda _error: conn.disconnect())
        except redis.ResponseError:
            raise  # an error reply: the connection is in step and stays usable
        except BaseException:
            conn.disconnect()
            raise

    def pipeline(self, *commands: tuple[EncodableT, ...] | bytes) -> list[Any]:
        """Send ``commands`` (argument tuples, or commands packed already) in one
        round trip, on this thread's connection (no transaction); their replies
        in order, an error reply as its exception."""
        conn = self._connection()
        packed = b"".join(
            command if isinstance(command, bytes) else b"".join(conn.pack_command(*command))
            for command in commands
        )

        def send() -> list[Any]:
            if not conn.is_connected and sentinel.asks_sentinel(conn):
                conn.connect()
            conn.send_packed_command((packed,))
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(conn.read_response())
                except redis.ResponseError as exc:
                    replies.append(exc)
            return replies

        try:
            return conn.retry.call_with_retry(send, lambda _error: conn.disconnect())
        except BaseException:
            conn.disconnect()
            raise
