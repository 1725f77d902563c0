"""A master and a replica, for failover tests: the replica follows its master
through a ``Proxy``, so a test can cut the link and make the replica miss
writes, as a replica does that is promoted after its master died with writes
it had not passed on yet (replication is asynchronous).

Cutting the link at the proxy is what makes the miss certain. Stopping the
replica (SIGSTOP) is not enough: the master's writes wait in the replica's
socket buffer and are applied when it resumes; and a replica whose link was
killed connects again and catches up from the master's backlog.
"""

from __future__ import annotations

import redis

from .proxy import Proxy
from .redis_server import RedisServer
from .waits import wait_until


class Replicated:
    """``master`` and ``replica`` (RedisServer, started) with the link between
    them running through a proxy."""

    def __init__(self, master: RedisServer, replica: RedisServer):
        self.master = master
        self.replica = replica
        self.link = Proxy(master.port)
        self.master_client = master.client(socket_timeout=10)
        self.replica_client = replica.client(socket_timeout=10)
        # A diskless sync waits 5 s by default for more replicas to join it.
        self.master_client.config_set("repl-diskless-sync-delay", 0)
        self.replica_client.replicaof("127.0.0.1", self.link.port)
        self.wait_until(self._linked, "the replica to load its master's data")

    def _linked(self) -> bool:
        info = self.replica_client.info("replication")
        return info["master_link_status"] == "up" and not info["master_sync_in_progress"]

    def synced(self) -> None:
        """Return once the replica has every write the master has taken so far.
        (Not WAIT: it waits only for the writes of the connection that sends it.)"""
        offset = self.master_client.info("replication")["master_repl_offset"]
        self.wait_until(
            lambda: self.replica_client.info("replication")["slave_repl_offset"] >= offset,
            "the replica to catch up",
        )

    def cut(self) -> None:
        """From now on the replica gets nothing of the master's writes."""
        self.link.cut_off()

    def fail_over(self) -> None:
        """The master dies; the replica, promoted, takes writes in its place."""
        self.master.kill()
        self.replica_client.replicaof("NO", "ONE")
        self.wait_until(
            lambda: self.replica_client.info("replication")["role"] == "master",
            "the replica to become a master",
        )

    def close(self) -> None:
        self.link.close()
        self.master_client.close()
        self.replica_client.close()

    @staticmethod
    def wait_until(predicate, what: str) -> None:
        """Poll: Redis signals neither the end of a sync nor of a promotion."""
        wait_until(predicate, what, not_yet=(redis.ConnectionError,))
