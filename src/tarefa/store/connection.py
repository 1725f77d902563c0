"""Where Redis is, and the clients that talk to it.

``TAREFA_URL`` (or the file ``TAREFA_URL_FILE`` names, or ``App(url=...)``)
names a Redis: ``redis://``, ``rediss://`` (TLS) or ``unix://``, with password
and db as redis-py reads them, the master a set of sentinels follows,
``redis+sentinel://`` (``sentinel.py``), or a Redis Cluster,
``redis+cluster://`` (``cluster.py``).
With neither, the embedded default starts (see ``embedded.py``).

Every call waits at most ``timeout`` seconds (``App(redis_timeout=...)``, 3 s
by default) to connect and for each reply, so a hung Redis (a stopped process,
a partition) cannot block a producer or a worker for ever; only the blocking
waits of ``job.result()`` use clients with no reply timeout. A failed or
timed-out command is retried a few times, the same command with the same
arguments (safe: every enqueue carries its own job id, so a retried enqueue
cannot add a job twice), then the error is raised: at most about
``(retries + 1) * timeout`` seconds in all. Nothing is buffered in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import weakref
from functools import cached_property
from typing import Any, TypeVar, cast

import redis
import redis.asyncio
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from . import cluster, sentinel
from .autopipeline import AutoPipeline
from .embedded import Embedded
from .thread_connections import ThreadConnections

_RETRY_ON = [redis.ConnectionError, redis.TimeoutError]
TIMEOUT = 3.0  # seconds to connect, and to wait for each reply (App(redis_timeout=...))
RETRIES = 3  # attempts after the first, 0.1 s, 0.2 s and 0.4 s apart


SCHEMES = ("redis://", "rediss://", "unix://", *sentinel.SCHEMES, *cluster.SCHEMES)


def check_url(url: str, source: str = "url") -> str:
    if not url.startswith(SCHEMES):
        raise ValueError(
            f"{source} must start with redis://, rediss://, unix://, redis+sentinel:// or "
            f"redis+cluster://, not {redacted(url)!r}"
        )
    try:
        if sentinel.is_sentinel_url(url):
            sentinel.parse(url)
        elif cluster.is_cluster_url(url):
            cluster.parse(url)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
    return url


def resolve_url(url: str | None) -> str:
    """The URL to use: the one given, else TAREFA_URL (or the file
    TAREFA_URL_FILE names), else the embedded server."""
    if url:
        return check_url(url)
    if is_embedded(url):
        return Embedded.here().ensure_running()
    path = os.environ.get("TAREFA_URL_FILE")
    if not path:
        return check_url(os.environ["TAREFA_URL"], "TAREFA_URL")
    if os.environ.get("TAREFA_URL"):
        raise ValueError("set TAREFA_URL or TAREFA_URL_FILE, not both")
    return check_url(_read_url_file(path), f"the URL in TAREFA_URL_FILE ({path})")


def _read_url_file(path: str) -> str:
    """A URL kept in a file, as a container's secret is mounted (a password
    then stays out of the environment, which `docker inspect` and
    /proc/PID/environ show): its first line, spaces trimmed."""
    try:
        with open(path, encoding="utf-8") as file:
            url = file.readline().strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ValueError(f"TAREFA_URL_FILE: cannot read {path}: {reason}") from None
    if not url:
        raise ValueError(f"TAREFA_URL_FILE: {path} holds no URL")
    return url


def is_embedded(url: str | None) -> bool:
    """Whether an App given ``url`` uses the embedded server: no URL, and
    neither TAREFA_URL nor TAREFA_URL_FILE set."""
    return not url and not os.environ.get("TAREFA_URL") and not os.environ.get("TAREFA_URL_FILE")


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
    if not sep:  # no scheme (a mistake check_url reports, naming the value)
        scheme, rest = "", url
    if "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user, colon, _ = credentials.partition(":")
    shown = f"{user}:" if user and colon else ""
    return f"{scheme}{sep}{shown}***@{host}"


# Whatever talking to Redis can raise: the client's errors (the base class of
# every one), and the socket's.
REDIS_ERRORS = (redis.exceptions.RedisError, OSError)

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


# A client of a Redis Cluster is typed as one of a single Redis: it takes the
# same commands (each routed to the node that holds its keys).
def sync_client(
    url: str, *, retries: int = RETRIES, timeout: float = TIMEOUT, blocking: bool = False
) -> redis.Redis:
    """A client whose calls wait ``timeout`` s for a reply; ``blocking``: no
    limit on replies (for blocking waits, which last as long as asked)."""
    settings: dict[str, Any] = {
        "socket_connect_timeout": timeout,
        "socket_timeout": None if blocking else timeout,
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), retries),
        "retry_on_error": _RETRY_ON if retries else [],
    }
    if sentinel.is_sentinel_url(url):
        return sentinel.sync_master(sentinel.parse(url), timeout, **settings)
    if cluster.is_cluster_url(url):
        return cast(redis.Redis, cluster.sync_cluster(cluster.parse(url), **settings))
    return redis.Redis.from_url(url, **settings)


def async_client(
    url: str, *, retries: int = RETRIES, timeout: float = TIMEOUT, blocking: bool = False
) -> redis.asyncio.Redis:
    settings: dict[str, Any] = {
        "socket_connect_timeout": timeout,
        "socket_timeout": None if blocking else timeout,
        "retry": redis.asyncio.retry.Retry(ExponentialBackoff(cap=0.5, base=0.05), retries),
        "retry_on_error": _RETRY_ON if retries else [],
    }
    if sentinel.is_sentinel_url(url):
        return sentinel.async_master(sentinel.parse(url), timeout, **settings)
    if cluster.is_cluster_url(url):
        client = cluster.async_cluster(cluster.parse(url), **settings)
        return cast(redis.asyncio.Redis, client)
    return redis.asyncio.Redis.from_url(url, **settings)


# What reading a cluster's slot map raises when no node answers with one.
_NO_SLOT_MAP = (redis.exceptions.RedisClusterException, redis.RedisError, OSError)

T = TypeVar("T")
# One per event loop, dropped with its loop.
_PerLoop = weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T]


class Clients:
    """Clients of one Redis, made on first use: a sync client, per-thread
    connections (``direct``), one asyncio client and one ``AutoPipeline`` per
    event loop, and, for the blocking waits of ``job.result()``, clients with
    no reply timeout.

    An asyncio connection pool belongs to the loop that opened it, so a program
    that runs several loops (tests, ``asyncio.run`` in a script) gets one each.

    On a Redis Cluster (``is_cluster``) the sync and asyncio clients are
    redis-py's cluster clients; the per-thread connections and the
    AutoPipeline, which speak to one server, are not used, and ``node(key)``
    gives the clients of the one node that holds ``key``.
    """

    def __init__(self, url: str | None, *, retries: int = RETRIES, timeout: float = TIMEOUT):
        self._url = url
        self._resolved: str | None = None
        self.retries = retries
        self.timeout = timeout
        self._sync: redis.Redis | None = None
        self._sync_blocking: redis.Redis | None = None
        self._direct: ThreadConnections | None = None
        self._async: _PerLoop[redis.asyncio.Redis] = weakref.WeakKeyDictionary()
        self._async_blocking: _PerLoop[redis.asyncio.Redis] = weakref.WeakKeyDictionary()
        self._autopipelines: _PerLoop[AutoPipeline] = weakref.WeakKeyDictionary()
        self._last_autopipeline: tuple[asyncio.AbstractEventLoop, AutoPipeline] | None = None
        self._nodes: dict[tuple[str, int], Clients] = {}  # a cluster's, by address

    @property
    def url(self) -> str:
        if self._resolved is None:
            self._resolved = resolve_url(self._url)
        return self._resolved

    @property
    def where(self) -> str:
        """Where Redis is, for a log line: its URL, secrets hidden, and so
        when it is the embedded server (a TAREFA_URL missing in production
        shows in the worker's first lines)."""
        if is_embedded(self._url):
            return f"the embedded server at {self.url} (TAREFA_URL is not set)"
        return redacted(self.url)

    @cached_property
    def is_cluster(self) -> bool:
        return cluster.is_cluster_url(self.url)

    def node(self, key: str) -> Clients:
        """A cluster's node that holds ``key``, as the slot map last read says."""
        found = self.sync.get_node_from_key(key)  # type: ignore[attr-defined]
        return self._node(found.host, found.port)

    async def anode(self, key: str) -> Clients:
        client: Any = self.aio
        await client.initialize()  # (reads the slot map the first time only)
        found = client.get_node_from_key(key)
        return self._node(found.host, found.port)

    def redirected(self, told: Exception) -> Clients | None:
        """The node a MOVED reply names (None for other replies)."""
        if isinstance(told, redis.exceptions.MovedError):
            return self._node(told.host, int(told.port))
        return None

    def _node(self, host: str, port: int) -> Clients:
        node = self._nodes.get((host, port))
        if node is None:
            url = cluster.parse(self.url).node_url(host, port)
            node = Clients(url, retries=self.retries, timeout=self.timeout)
            self._nodes[host, port] = node
        return node

    def sync_for(self, key: str) -> redis.Redis:
        """The sync client of the server that holds ``key``: for a command
        that works on one server's keys (SCAN), not on a cluster's."""
        return self.node(key).sync if self.is_cluster else self.sync

    def masters(self) -> list[Clients]:
        """A cluster's masters, each as a node's clients."""
        primaries = self.sync.get_primaries()  # type: ignore[attr-defined]
        return [self._node(node.host, node.port) for node in primaries]

    async def amasters(self) -> list[Clients]:
        client: Any = self.aio
        await client.initialize()
        return [self._node(node.host, node.port) for node in client.get_primaries()]

    def reread_slots(self) -> None:
        """Read the cluster's slot map again (a node failed, a slot moved); a
        map no node gives now stays as it was, for the next call to try again."""
        with contextlib.suppress(*_NO_SLOT_MAP):
            self.sync.nodes_manager.initialize()  # type: ignore[attr-defined]

    async def areread_slots(self) -> None:
        client: Any = self.aio
        with contextlib.suppress(*_NO_SLOT_MAP):
            await client.nodes_manager.initialize()

    @property
    def sync(self) -> redis.Redis:
        if self._sync is None:
            self._sync = sync_client(self.url, retries=self.retries, timeout=self.timeout)
        return self._sync

    @property
    def sync_blocking(self) -> redis.Redis:
        """For blocking waits: no limit on how long a reply takes."""
        if self._sync_blocking is None:
            self._sync_blocking = sync_client(
                self.url, retries=self.retries, timeout=self.timeout, blocking=True
            )
        return self._sync_blocking

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
            client = async_client(self.url, retries=self.retries, timeout=self.timeout)
            self._async[loop] = client
        return client

    @property
    def aio_blocking(self) -> redis.asyncio.Redis:
        """For blocking waits from asyncio code: no limit on how long a reply takes."""
        loop = asyncio.get_running_loop()
        client = self._async_blocking.get(loop)
        if client is None:
            client = async_client(
                self.url, retries=self.retries, timeout=self.timeout, blocking=True
            )
            self._async_blocking[loop] = client
        return client

    @property
    def autopipeline(self) -> AutoPipeline:
        """The running loop's connection for the asyncio producer's hot calls
        (script calls), shared by its coroutines (autopipeline.py)."""
        loop = asyncio.get_running_loop()
        last = self._last_autopipeline  # (one tuple: read whole, whatever other threads do)
        if last is not None and last[0] is loop:
            return last[1]
        pipeline = self._autopipelines.get(loop)
        if pipeline is None:
            pipeline = AutoPipeline(self.aio, self.timeout)
            self._autopipelines[loop] = pipeline
        self._last_autopipeline = (loop, pipeline)
        return pipeline

    async def aclose(self) -> None:
        """Close the running loop's asyncio clients (before the loop ends)."""
        loop = asyncio.get_running_loop()
        pipeline = self._autopipelines.pop(loop, None)
        self._last_autopipeline = None
        if pipeline is not None:
            await pipeline.aclose()
        for clients in (self._async, self._async_blocking):
            client = clients.pop(loop, None)
            if client is not None:
                await client.aclose()
        for node in self._nodes.values():
            await node.aclose()

    def close(self) -> None:
        for client in (self._sync, self._sync_blocking):
            if client is not None:
                client.close()
        if self._direct is not None:
            self._direct.close()
        self._sync = self._sync_blocking = None
        self._direct = None
        for node in self._nodes.values():
            node.close()
        self._nodes.clear()
