"""A Redis Cluster of real redis-servers on free ports: 3 masters, each with
a replica, made with CLUSTER commands (ADDSLOTS, MEET, REPLICATE) rather than
redis-cli, so any redis-server binary the suite uses will do.

A node is "failed" after ``NODE_TIMEOUT_MS`` without an answer; its replica
then takes its slots over.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path
from urllib.parse import urlencode

import redis

from .redis_server import RedisServer
from .waits import wait_until

SLOTS = 16384
NODE_TIMEOUT_MS = 1000


class Cluster:
    def __init__(self, directory: Path, masters: int = 3, replicas: int = 1, **server):
        """``server``: the RedisServer settings of every node (``aof=``, ``path=``...)."""
        options = ("--cluster-enabled", "yes", "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                   "--cluster-config-file", "nodes.conf")  # fmt: skip
        if server.get("tls") is not None:  # the nodes speak TLS to each other too
            options += ("--tls-cluster", "yes", "--tls-replication", "yes")
        count = masters * (1 + replicas)
        self.nodes = [
            RedisServer(
                directory / f"node{i}", extra=options, port=bus_safe_port(), **server
            ).start()
            for i in range(count)
        ]
        self.masters = self.nodes[:masters]
        self.replicas = self.nodes[masters:]
        clients = [node.client() for node in self.nodes]
        try:
            self._form(clients, masters, replicas)
        except BaseException:
            self.close()  # a cluster that did not form leaves no server behind
            raise
        finally:
            for client in clients:
                client.close()

    def _form(self, clients: list[redis.Redis], masters: int, replicas: int) -> None:
        """Slots to the masters, every node met, each replica on its master."""
        count = len(clients)
        for i, client in enumerate(clients[:masters]):
            first, last = i * SLOTS // masters, (i + 1) * SLOTS // masters
            client.execute_command("CLUSTER", "ADDSLOTS", *range(first, last))
        for client in clients[1:]:
            client.execute_command("CLUSTER", "MEET", "127.0.0.1", self.nodes[0].port)
        wait_until(lambda: all(len(_nodes(c)) == count for c in clients), "the nodes to meet")
        ids = [c.execute_command("CLUSTER", "MYID").decode() for c in clients]
        for i, client in enumerate(clients[masters:]):
            client.execute_command("CLUSTER", "REPLICATE", ids[i % masters])
        replicas_in_all = masters * replicas

        def formed() -> bool:
            for c in clients:
                if c.cluster("INFO")["cluster_state"] != "ok":
                    return False
                flags = [line.split()[2].split(",") for line in _nodes(c)]
                if sum("slave" in f for f in flags) != replicas_in_all:
                    return False
            # Clients learn the replicas from CLUSTER SLOTS, which lists one
            # once its master has heard (gossip) that it has synced.
            return all(
                len(entry) - 3 == replicas
                for c in clients
                for entry in c.execute_command("CLUSTER", "SLOTS")
            )

        wait_until(formed, "the cluster to form", not_yet=(redis.ResponseError,))

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{node.port}" for node in self.masters)
        tls = self.masters[0].tls
        if tls is None:
            return f"redis+cluster://{hosts}"
        return f"rediss+cluster://{hosts}?{urlencode({'ssl_ca_certs': str(tls.ca)})}"

    def master_of(self, key: str) -> RedisServer:
        """The master that holds ``key``'s slot now."""
        client = self.client()
        try:
            node = client.get_node_from_key(key)
        finally:
            client.close()
        return next(n for n in self.nodes if n.port == node.port)

    def fail_over(self, master: RedisServer) -> RedisServer:
        """SIGKILL ``master``; return the replica the cluster promoted in its
        place, once the cluster serves every slot again."""
        master_id = _myself(master)[0]
        candidates = [n for n in self.replicas if _myself(n)[3] == master_id]
        master.kill()

        def promoted() -> RedisServer | None:
            for node in candidates:
                client = node.client()
                try:
                    role = client.info("replication")["role"]
                    if role == "master" and client.cluster("INFO")["cluster_state"] == "ok":
                        return node
                finally:
                    client.close()
            return None

        new = wait_until(promoted, "a replica's promotion", not_yet=(redis.RedisError,))
        self.masters = [new if n is master else n for n in self.masters]
        self.replicas = [n for n in self.replicas if n is not new]
        return new

    def hand_over(self, master: RedisServer) -> RedisServer:
        """A graceful failover (CLUSTER FAILOVER on a replica of ``master``):
        the replica, caught up, becomes the master, and ``master`` its replica,
        which answers MOVED for the slots it held. Returns the new master."""
        master_id = _myself(master)[0]
        replica = next(n for n in self.replicas if _myself(n)[3] == master_id)
        client = replica.client()
        try:
            client.execute_command("CLUSTER", "FAILOVER")
            wait_until(
                lambda: (
                    client.info("replication")["role"] == "master"
                    and _myself(master)[3] == _myself(replica)[0]
                ),
                "the replica to take over",
                not_yet=(redis.RedisError,),
            )
        finally:
            client.close()
        self.masters = [replica if n is master else n for n in self.masters]
        self.replicas = [master if n is replica else n for n in self.replicas]
        return replica

    def client(self) -> redis.RedisCluster:
        return redis.RedisCluster(host="127.0.0.1", port=self.masters[0].port)

    def close(self) -> None:
        for node in self.nodes:
            node.kill()


def bus_safe_port() -> int:
    """A free port whose cluster bus port (10,000 above it) is free too."""
    while True:
        port = random.randint(20_000, 55_000)
        try:
            for candidate in (port, port + 10_000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port


def _nodes(client: redis.Redis) -> list[str]:
    listing = client.execute_command("CLUSTER", "NODES").decode()
    return [line for line in listing.splitlines() if line]


def _myself(node: RedisServer) -> list[str]:
    """The node's own line of CLUSTER NODES, split: id, address, flags, master's id..."""
    client = node.client()
    try:
        return next(line.split() for line in _nodes(client) if "myself" in line.split()[2])
    finally:
        client.close()
