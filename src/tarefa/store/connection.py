"""Where Redis is, and the clients that talk to it.

``TAREFA_URL`` (or ``App(url=...)``) names a Redis: ``redis://``, ``rediss://``
(TLS) or ``unix://``, with password and db as redis-py reads them. With neither,
the embedded default starts (see ``embedded.py``).

A producer's client retries a failed command a few times over about a second
(safe: every enqueue carries its own job id, so a retried enqueue cannot add a
job twice), then raises ``redis.ConnectionError``. Nothing is buffered in memory.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import weakref

import redis
import redis.asyncio
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from .embedded import Embedded

_RETRY_ON = [redis.ConnectionError, redis.TimeoutError]


SCHEMES = ("redis://", "rediss://", "unix://")


def check_url(url: str, source: str = "url") -> str:
    if not url.startswith(SCHEMES):
        raise ValueError(
            f"{source} must start with redis://, rediss:// or unix://, not {redacted(url)!r}"
        )
    return url


def resolve_url(url: str | None) -> str:
    """The URL to use: the one given, else TAREFA_URL, else the embedded server."""
    if url:
        return check_url(url)
    if os.environ.get("TAREFA_URL"):
        return check_url(os.environ["TAREFA_URL"], "TAREFA_URL")
    return Embedded.here().ensure_running()


# A query argument that carries a secret: ?password=... (redis-py takes it, as it
# does unix:///path?password=...) or ssl_password=... (the key file's).
_SECRET_ARGUMENT = re.compile(r"([?&][^=&#]*password[^=&#]*=)[^&#]*", re.IGNORECASE)


def redacted(url: str) -> str:
    """The URL with its secrets hidden, for logs and error messages: the
    password, any ``password`` query argument, and a lone name before ``@``
    (a password written without its ``:`` is one). Too much is hidden rather
    than too little: a password with an unescaped ``@``, ``/`` or ``?`` in it
    leaves no clear end."""
    url = _SECRET_ARGUMENT.sub(r"\1***", url)
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user, colon, _ = credentials.partition(":")
    shown = f"{user}:" if user and colon else ""
    return f"{scheme}{sep}{shown}***@{host}"


# Refusals that waiting does not mend: wrong credentials, an ACL denying a command.
AUTH_ERRORS = (redis.AuthenticationError, redis.exceptions.AuthenticationWrongNumberOfArgsError)
REFUSED = (*AUTH_ERRORS, redis.exceptions.NoPermissionError)


def describe_error(url: str, exc: BaseException) -> str:
    """What went wrong with the Redis at ``url``, for a person: wrong
    credentials, an ACL that denies a command tarefa sends, or no answer."""
    where = redacted(url)
    if isinstance(exc, AUTH_ERRORS):
        return f"Redis at {where} refused the credentials (the URL's user and password): {exc}"
    if isinstance(exc, redis.exceptions.NoPermissionError):
        return (
            f"Redis at {where} denies a command tarefa needs (its ACL user needs the "
            f"commands and keys in tarefa.store.acl): {exc}"
        )
    return f"cannot reach Redis at {where}: {exc}"


def sync_client(url: str, *, retries: int = 3) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=5,
        socket_timeout=None,  # blocking waits (job.result) may last as long as asked
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries),
        retry_on_error=_RETRY_ON if retries else [],
    )


def async_client(url: str, *, retries: int = 3, **kwargs) -> redis.asyncio.Redis:
    return redis.asyncio.Redis.from_url(
        url,
        **kwargs,
        socket_connect_timeout=5,
        socket_timeout=None,
        retry=redis.asyncio.retry.Retry(ExponentialBackoff(cap=0.5, base=0.05), retries),
        retry_on_error=_RETRY_ON if retries else [],
    )


class ThreadConnections:
    """One connection per thread for the producer's hot calls (enqueue).

    A command goes straight to this thread's socket, skipping the pool lookup,
    locking and instrumentation redis-py's client does per command (about a
    fifth of a round trip). Same connection settings and retry policy as the
    client; a connection is dropped whenever a call is cut short, so no stale
    reply is ever read, and replaced in a forked child.
    """

    def __init__(self, client: redis.Redis):
        self._pool = client.connection_pool
        self._local = threading.local()

    def _connection(self):
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            local.conn = self._pool.make_connection()
            local.pid = os.getpid()
        return local.conn

    def execute_command(self, *args):
        conn = self._connection()
        packed = conn.pack_command(*args)

        def send():
            conn.send_packed_command(packed)
            return conn.read_response()

        try:
            return conn.retry.call_with_retry(send, lambda _error: conn.disconnect())
        except redis.ResponseError:
            raise  # an error reply: the connection is in step and stays usable
        except BaseException:
            conn.disconnect()
            raise


class Clients:
    """One sync client and one asyncio client per event loop, made on first use.

    An asyncio connection pool belongs to the loop that opened it, so a program
    that runs several loops (tests, ``asyncio.run`` in a script) gets one each.
    """

    def __init__(self, url: str | None, *, retries: int = 3):
        self._url = url
        self._resolved: str | None = None
        self._retries = retries
        self._sync: redis.Redis | None = None
        self._direct: ThreadConnections | None = None
        self._async: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    @property
    def url(self) -> str:
        if self._resolved is None:
            self._resolved = resolve_url(self._url)
        return self._resolved

    @property
    def sync(self) -> redis.Redis:
        if self._sync is None:
            self._sync = sync_client(self.url, retries=self._retries)
        return self._sync

    @property
    def direct(self) -> ThreadConnections:
        """Per-thread connections for the hot sync calls (script calls)."""
        if self._direct is None:
            self._direct = ThreadConnections(self.sync)
        return self._direct

    @property
    def aio(self) -> redis.asyncio.Redis:
        loop = asyncio.get_running_loop()
        client = self._async.get(loop)
        if client is None:
            client = self._async[loop] = async_client(self.url, retries=self._retries)
        return client

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
            self._sync = None
            self._direct = None
