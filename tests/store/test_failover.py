"""Fencing across a failover: a replica promoted after its master died never
saw the last leases the master handed out, so the job runs again on the new
master, while the worker that leased it on the old one may still be running
it. The two attempts must not share a lease token: the stale worker's
heartbeats and outcome are refused, the live worker's kept."""

from __future__ import annotations

import asyncio

import pytest

from tarefa.store import Store
from tarefa.store.keys import queue_keys

from ..replication import Replicated
from .reported import reported

K = queue_keys("q")


@pytest.fixture
def replicated(private_redis):
    pair = Replicated(private_redis(aof=False), private_redis(aof=False))
    yield pair
    pair.close()


def fetch(store: Store, worker: str, outcomes=()):
    return asyncio.run(
        store.fetch(
            "q", worker, want=10, lease_ms=60_000, max_stalls=3, outcomes=reported(outcomes)
        )
    )


def test_a_lease_the_promoted_replica_never_saw_does_not_fence_its_new_attempt(replicated):
    old, new = Store(replicated.master.url), Store(replicated.replica.url)
    try:
        old.enqueue("q", "a", (0, 0, ""), ["task", "m:f", "payload", b"[[],{}]"])
        replicated.synced()
        replicated.cut()
        stale = fetch(old, "stale").jobs[0]  # the master's last write, never replicated
        replicated.fail_over()
        assert replicated.replica_client.hget(K.job("a"), "state") == b"queued"

        live = fetch(new, "live").jobs[0]
        # The stale worker, pointed at the new master, learns it lost the job...
        lost = asyncio.run(new.heartbeat("q", 60_000, [("a", stale.token)]))
        assert [(loss.job_id, loss.token) for loss in lost] == [("a", stale.token)]
        assert asyncio.run(new.heartbeat("q", 60_000, [("a", live.token)])) == []
        assert not new.progress("q", "a", stale.token, b'{"value": 1}')
        # ... and what it reports is discarded; the live worker's outcome stands.
        got = fetch(new, "stale", [("a", stale.token, "completed", b'"stale"', 60_000)])
        assert got.stale == ["a"]
        got = fetch(new, "live", [("a", live.token, "completed", b'"live"', 60_000)])
        assert got.stale == []
        job = new.clients.sync.hgetall(K.job("a"))
        assert (job[b"state"], job[b"result"], job[b"worker"]) == (b"completed", b'"live"', b"live")
    finally:
        old.clients.close()
        new.clients.close()
