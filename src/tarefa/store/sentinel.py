"""A Redis whose master Sentinel names, and follows through a failover.

``redis+sentinel://[user:password@]host:port[,host:port...]/SERVICE[/db]``
lists the sentinels (any one that answers will do) and the name of the
master they watch; ``rediss+sentinel://`` speaks TLS to the master and its
replicas, with the ``ssl_*`` query arguments of a ``rediss://`` URL. The
user and password are the master's; ``?sentinel_password=`` is the
sentinels' own, when they have one.

Each connection asks a sentinel where the master is as it connects. After a
failover, a connection to the old master fails (or is told READONLY once it
is a replica) and is dropped; the call is retried, as any failed call is,
and its new connection reaches the new master.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel

from . import many_hosts

SCHEMES = ("redis+sentinel://", "rediss+sentinel://")


@dataclass(frozen=True)
class SentinelTarget:
    """What a ``redis+sentinel://`` URL names."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None
    tls: dict[str, Any] | None = None  # None: no TLS; else the ssl_* arguments


def is_sentinel_url(url: str) -> bool:
    return url.startswith(SCHEMES)


def parse(url: str) -> SentinelTarget:
    """The sentinels, the service and the master's credentials; ValueError
    saying what is wrong with a URL that does not name them."""
    parts = many_hosts.parse(url, "sentinel")
    scheme, arguments = parts.scheme, dict(parts.arguments)
    service, _, db = parts.path.partition("/")
    if not service:
        raise ValueError(
            f"{scheme}:// needs the name of the master its sentinels watch: "
            f"{scheme}://host:port/SERVICE[/db]"
        )
    if db and not db.isdigit():
        raise ValueError(f"{scheme}://: the database must be a number, not {db!r}")
    sentinel_password = arguments.pop("sentinel_password", None)
    if arguments:
        raise ValueError(f"{scheme}:// does not take {', '.join(sorted(arguments))}")
    return SentinelTarget(
        parts.hosts, unquote(service), int(db or 0), parts.username, parts.password,
        sentinel_password, parts.tls,
    )  # fmt: skip


def asks_sentinel(connection: object) -> bool:
    """Whether ``connection`` finds its server through a sentinel. Such a
    connection asks where the master is only in its ``connect()``, which a
    first send skips (it would connect to the connection's own host and
    port): tarefa's own connections call it themselves before sending."""
    managed = (
        redis.sentinel.SentinelManagedConnection,
        redis.asyncio.sentinel.SentinelManagedConnection,
    )
    return isinstance(connection, managed)


def _settings(target: SentinelTarget, timeout: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """The sentinels' connection settings, and the master's."""
    tls = target.tls or {}
    sentinels = {"socket_connect_timeout": timeout, "socket_timeout": timeout, **tls}
    if target.sentinel_password is not None:
        sentinels["password"] = target.sentinel_password
    master = {"db": target.db, "username": target.username, "password": target.password, **tls}
    return sentinels, master


def sync_master(target: SentinelTarget, timeout: float, **settings: Any) -> redis.Redis:
    """A client of the master, wherever the sentinels say it is."""
    sentinel_settings, master = _settings(target, timeout)
    sentinel = redis.sentinel.Sentinel(target.sentinels, sentinel_kwargs=sentinel_settings)
    client: redis.Redis = sentinel.master_for(target.service, **master, **settings)
    return client


def async_master(target: SentinelTarget, timeout: float, **settings: Any) -> redis.asyncio.Redis:
    sentinel_settings, master = _settings(target, timeout)
    sentinel = redis.asyncio.sentinel.Sentinel(target.sentinels, sentinel_kwargs=sentinel_settings)
    client: redis.asyncio.Redis = sentinel.master_for(target.service, **master, **settings)
    return client
