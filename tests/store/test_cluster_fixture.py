"""The test cluster itself (tests/cluster.py): 3 masters sharing the slots,
each with a replica, writable across slots through redis-py's cluster client."""

from __future__ import annotations

import pytest

from ..cluster import Cluster


@pytest.fixture
def cluster(tmp_path):
    made = Cluster(tmp_path)
    yield made
    made.close()


def test_the_test_cluster_has_three_masters_with_a_replica_each_and_takes_writes(cluster):
    client = cluster.client()
    try:
        for queue in ("emails", "webhooks", "crm", "documents"):  # hash tags of different slots
            client.set(f"tarefa:{{{queue}}}:probe", queue)
            assert client.get(f"tarefa:{{{queue}}}:probe") == queue.encode()
        masters = {node.port for node in client.get_primaries()}
        assert len(masters) == 3 and len(client.get_replicas()) == 3
    finally:
        client.close()
