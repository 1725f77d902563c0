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

from ..tasks import add


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
