"""A Redis Cluster: ``redis+cluster://[user:password@]host:port[,host:port...]``.

Any node that answers will do: the client reads the slot map from it, and
learns the others. ``rediss+cluster://`` speaks TLS, with the ``ssl_*`` query
arguments of a ``rediss://`` URL. A cluster has one database, 0.

Each queue's keys carry its hash tag (keys.py), so a queue lives in one slot
and its scripts run on the master that holds it; queues spread over the
masters. A queue's script calls go to that node on the node's own clients
(``Clients.node``), with the fast paths of a single Redis, and so do what
must share one connection or one node: WAITAOF and WAIT behind a durable
enqueue, and a worker's blocking wait for work (blocking.py). The store
follows MOVED there itself (base.py). Every other command goes through
redis-py's cluster client, which routes it by its keys, follows MOVED and
ASK, and reads the slot map again when a node fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import redis.asyncio.cluster
import redis.cluster

from . import many_hosts

SCHEMES = ("redis+cluster://", "rediss+cluster://")


@dataclass(frozen=True)
class ClusterTarget:
    """What a ``redis+cluster://`` URL names."""

    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None
    tls: dict[str, Any] | None = None  # None: no TLS; else the ssl_* arguments

    def node_url(self, host: str, port: int) -> str:
        """A plain URL of one node, with the cluster's credentials and TLS."""
        scheme = "rediss" if self.tls else "redis"
        user = quote(self.username or "", safe="")
        credentials = f"{user}:{quote(self.password, safe='')}@" if self.password else ""
        tls = {k: str(v) for k, v in (self.tls or {}).items() if k != "ssl"}
        query = f"?{urlencode(tls)}" if tls else ""
        return f"{scheme}://{credentials}{host}:{port}/0{query}"

    def settings(self) -> dict[str, Any]:
        """The cluster client's settings for credentials and TLS."""
        return {"username": self.username, "password": self.password} | (self.tls or {})


def is_cluster_url(url: str) -> bool:
    return url.startswith(SCHEMES)


def parse(url: str) -> ClusterTarget:
    """The nodes to start from and their credentials; ValueError saying what
    is wrong with a URL that does not name them."""
    parts = many_hosts.parse(url, "node")
    if parts.path not in ("", "0"):
        raise ValueError(f"{parts.scheme}:// has one database, 0; the URL names {parts.path!r}")
    if parts.arguments:
        raise ValueError(f"{parts.scheme}:// does not take {', '.join(sorted(parts.arguments))}")
    return ClusterTarget(parts.hosts, parts.username, parts.password, parts.tls)


def sync_cluster(target: ClusterTarget, **settings: Any) -> redis.cluster.RedisCluster:
    nodes = [redis.cluster.ClusterNode(host, port) for host, port in target.nodes]
    return redis.cluster.RedisCluster(
        startup_nodes=nodes, **target.settings(), **_cluster_settings(settings)
    )


def async_cluster(target: ClusterTarget, **settings: Any) -> redis.asyncio.cluster.RedisCluster:
    nodes = [redis.asyncio.cluster.ClusterNode(host, port) for host, port in target.nodes]
    return redis.asyncio.cluster.RedisCluster(
        startup_nodes=nodes, **target.settings(), **_cluster_settings(settings)
    )


def _cluster_settings(settings: dict[str, Any]) -> dict[str, Any]:
    # The cluster client retries a failed command itself, reading the slot map
    # again in between (its own retry_on_error is not a setting it takes).
    settings = dict(settings)
    settings.pop("retry_on_error", None)
    return settings
