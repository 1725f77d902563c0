"""A master, a replica and a sentinel watching them, each a real redis-server
on a free port: ``redis+sentinel://`` finds the master through the sentinel,
and a killed master is replaced by its promoted replica.

One sentinel with a quorum of 1 decides alone: enough to fail over, and the
fastest setup a test can wait on (a master is "down" after ``DOWN_AFTER_MS``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import redis

from .redis_server import RedisServer, binary, free_port
from .waits import PATIENCE, wait_until

SERVICE = "tarefa-test"
DOWN_AFTER_MS = 1000


class SentinelSet:
    """``replicas`` replicas (the first is ``replica``); ``server``: the
    RedisServer settings of every data node (``aof=``, ``path=``...)."""

    def __init__(self, directory: Path, *, replicas: int = 1, **server):
        self.directory = directory
        self.master = RedisServer(directory / "master", **server).start()
        self.replicas = [
            RedisServer(directory / f"replica{i}", **server).start() for i in range(replicas)
        ]
        self.replica = self.replicas[0]
        for node in self.replicas:
            client = node.client()
            client.replicaof("127.0.0.1", self.master.port)
            client.close()
        for node in self.replicas:
            self.wait_until(lambda node=node: self._linked(node), "the replicas to sync")
        self.port = free_port()
        config = directory / "sentinel.conf"  # a sentinel rewrites its own file
        config.write_text(
            f"port {self.port}\n"
            "bind 127.0.0.1\n"
            f"dir {directory}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.master.port} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {SERVICE} 10000\n"
        )
        with open(directory / "sentinel.log", "wb") as log:
            self.process = subprocess.Popen(
                [binary(), str(config), "--sentinel"], stdout=log, stderr=subprocess.STDOUT
            )
        self.sentinel = redis.Redis(port=self.port, socket_timeout=5)
        self.wait_until(self._watching, "the sentinel to find the replica")

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.port}/{SERVICE}"

    def master_port(self) -> int:
        host, port = self.sentinel.sentinel_get_master_addr_by_name(SERVICE)
        return int(port)

    def fail_over(self) -> RedisServer:
        """SIGKILL the master; return once the sentinel has promoted a replica
        and the other replicas follow it."""
        old = self.master
        old.kill()
        ports = {node.port: node for node in self.replicas}
        self.wait_until(lambda: self.master_port() in ports, "the sentinel to fail over")
        new = ports[self.master_port()]
        client = new.client()
        try:
            self.wait_until(lambda: client.info("replication")["role"] == "master", "the promotion")
        finally:
            client.close()
        others = [node for node in self.replicas if node is not new]
        for node in others:
            self.wait_until(lambda node=node: self._follows(node, new), "the replicas to follow")
        self.master, self.replicas = new, [*others, old]  # (the old one is dead)
        self.replica = self.replicas[0]
        return new

    def _follows(self, node: RedisServer, master: RedisServer) -> bool:
        client = node.client()
        try:
            info = client.info("replication")
            return info.get("master_port") == master.port and self._linked(node)
        finally:
            client.close()

    def _watching(self) -> bool:
        known = {int(r["port"]) for r in self.sentinel.sentinel_slaves(SERVICE)}
        return all(node.port in known for node in self.replicas)

    @staticmethod
    def _linked(server: RedisServer) -> bool:
        client = server.client()
        try:
            info = client.info("replication")
            return info["master_link_status"] == "up" and not info["master_sync_in_progress"]
        finally:
            client.close()

    def close(self) -> None:
        self.sentinel.close()
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(PATIENCE)
        for server in (self.master, *self.replicas):
            server.kill()

    @staticmethod
    def wait_until(predicate, what: str) -> None:
        """Poll: neither a sync, a sentinel's discovery nor a failover signals its end."""
        wait_until(predicate, what, not_yet=(redis.ConnectionError, redis.ResponseError))
