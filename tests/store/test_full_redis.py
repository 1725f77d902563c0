"""A full Redis (``maxmemory`` reached, ``maxmemory-policy noeviction``): it
refuses writes that need memory. Producers get an error that names the queue
and the jobs, safe to enqueue again; what frees memory still goes through.

Redis decides per script (6.2 and 7 alike, for a script without flags): a
script is refused at its first command that may grow memory, unless a write
came before it; from then on nothing in it is refused. These tests run on a
real server whose ``maxmemory`` is set below what it uses.
"""

from __future__ import annotations

import asyncio
from contextlib import contextmanager

import pytest
import redis

from tarefa import App, RedisFull
from tarefa.store import Store

from ..tasks import add
from .reported import reported


@pytest.fixture
def server(private_redis):
    return private_redis(aof=False)


@contextmanager
def full(client: redis.Redis, room: int = 0):
    """The server full for the block: ``maxmemory`` is what it uses now plus
    ``room`` bytes (0: every write that needs memory is refused at once)."""
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", client.info("memory")["used_memory"] + room if room else 1)
    try:
        yield
    finally:
        client.config_set("maxmemory", 0)


def test_an_enqueue_refused_by_a_full_redis_names_the_queue_and_the_job(server):
    app = App(server.url)
    task = app.task(add.fn, name="t:add", queue="emails")
    client = server.client()
    task.enqueue(0, 0)  # the queue is known, the scripts loaded
    with full(client):
        with pytest.raises(RedisFull) as caught:
            task.enqueue(1, 1)
        with pytest.raises(RedisFull) as acaught:
            asyncio.run(task.aenqueue(2, 2))
    for error in (caught.value, acaught.value):
        assert isinstance(error, redis.exceptions.OutOfMemoryError)  # what was raised before
        assert error.queue == "emails" and error.job_id
        message = str(error)
        assert f"job {error.job_id} of t:add was not enqueued in queue 'emails'" in message
        assert "is full" in message and "maxmemory" in message
        assert f".with_options(job_id={error.job_id!r})" in message
    assert app.queue("emails").counts()["queued"] == 1  # nothing of them was written
    again = task.with_options(job_id=caught.value.job_id).enqueue(1, 1)
    assert again.created and app.queue("emails").counts()["queued"] == 2
    app.close()


def test_a_batch_refused_part_way_names_the_jobs_not_enqueued(server, monkeypatch):
    """A batch goes 1,000 jobs per script call: here Redis fills up after the
    first call, so the second is refused whole and the third is not sent."""
    app = App(server.url)
    task = app.task(add.fn, name="t:add")
    client = server.client()
    task.enqueue(0, 0)
    send = app.store.enqueue_many

    def then_full(*args, **kwargs):
        replies = send(*args, **kwargs)
        client.config_set("maxmemory", 1)  # full from now on: the chunk sent next is refused
        return replies

    monkeypatch.setattr(app.store, "enqueue_many", then_full)
    with full(client, room=10_000_000), pytest.raises(RedisFull) as caught:
        task.enqueue_many([(i, i) for i in range(2500)])
    error = caught.value
    assert len(set(error.job_ids)) == 1500 and error.queue == "default"
    assert str(error).startswith(
        "the first 1000 jobs of the batch were enqueued; the other 1500 (.job_ids) were not, "
        "the first 1000 of them refused: Redis at "
    )
    assert app.queue("default").counts()["queued"] == 1001
    for job_id in error.job_ids[:3]:
        assert task.with_options(job_id=job_id).enqueue(1, 1).created
    app.close()


def test_what_frees_memory_runs_on_a_full_redis_and_what_needs_memory_is_refused(server):
    """Workers drain a full Redis: leasing, outcomes (completed, failed,
    retried), heartbeats, recovery, hand-backs, deletion and the worker's
    beat all run on it. Enqueues, counts and new registrations are refused."""
    store = Store(server.url)
    client = server.client()
    for job_id in "abcdefg":
        store.enqueue("q", job_id, (0, 0, ""), ["task", "m:f", "payload", b"[[],{}]"])
    a, b, c = run(store.fetch("q", "w1", want=3, lease_ms=60_000, max_stalls=3)).jobs
    (d,) = run(store.fetch("q", "w1", want=1, lease_ms=1, max_stalls=3)).jobs  # expires at once
    info = {"host": "h", "pid": 1, "queues": "q", "concurrency": 4, "started_at": 0, "running": 0}
    assert run(store.register_worker("w1", info, 60_000))
    with full(client):
        assert run(store.heartbeat("q", 60_000, [(a.id, a.token)])) == []
        assert run(store.recover("q", max_stalls=3)).count == 1  # d, back to ready
        outcomes = [
            (a.id, a.token, "completed", b"1", 60_000),
            (b.id, b.token, "failed", b'{"type": "E", "message": "m"}', 0),
            (c.id, c.token, "retry", b'{"type": "E", "message": "m"}', 60_000),
        ]
        fetched = run(store.fetch("q", "w1", want=2, lease_ms=60_000, max_stalls=3,
                                  outcomes=reported(outcomes)))  # fmt: skip
        assert fetched.stale == [] and sorted(j.id for j in fetched.jobs) == ["d", "e"]
        e = next(j for j in fetched.jobs if j.id == "e")
        assert run(store.requeue("q", [(e.id, e.token)])) == 1
        assert store.delete("q", ["f"]) == 1
        run(store.beat_worker("w1", 60_000, 7))

        with pytest.raises(RedisFull):
            store.enqueue("q", "h", (0, 0, ""), ["task", "m:f", "payload", b"[[],{}]"])
        with pytest.raises(redis.ResponseError, match="OOM|command not allowed"):
            run(store.record_stats("q", {"completed|m:f": 1}))
        assert not run(store.register_worker("w2", info | {"pid": 2}, 60_000))
        run(store.beat_worker("w2", 60_000, 0))  # still no room: still unlisted
        assert {w["id"]: w["running"] for w in store.workers()} == {"w1": "7"}

    states = {i: client.hget(f"tarefa:{{q}}:job:{i}", "state") for i in "abcdefg"}
    assert states == {"a": b"completed", "b": b"failed", "c": b"scheduled", "d": b"active",
                      "e": b"queued", "f": None, "g": b"queued"}  # fmt: skip
    run(store.beat_worker("w2", 60_000, 0))  # room again: listed at its next beat
    assert {w["id"]: w["pid"] for w in store.workers()} == {"w1": "1", "w2": "2"}
    store.clients.close()


def test_a_worker_whose_registration_expired_is_listed_again_at_its_next_beat(server):
    """Its beat finds no registration (it expired while Redis was out of
    reach): it registers again, in full, rather than leave a husk of a hash
    that tarefa info does not list."""
    store = Store(server.url)
    info = {"host": "h", "pid": 1, "queues": "q", "concurrency": 4, "started_at": 0, "running": 0}
    run(store.register_worker("w1", info, 60_000))
    server.client().delete("tarefa:worker:w1")
    server.client().srem("tarefa:workers", "w1")
    run(store.beat_worker("w1", 60_000, 3))
    (listed,) = store.workers()
    assert (listed["id"], listed["host"], listed["running"]) == ("w1", "h", "3")
    store.clients.close()


def run(coro):
    return asyncio.run(coro)
