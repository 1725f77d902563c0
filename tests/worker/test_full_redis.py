"""A worker on a full Redis (``maxmemory`` reached, ``maxmemory-policy
noeviction``): it starts, and drains it, and memory falls."""

from __future__ import annotations

import logging

import pytest

from tarefa import App, RedisFull
from tarefa.worker import Worker

from .. import tasks
from ..waits import drain

BODY = "Dear customer, " + "x" * 500  # what makes most of a job's payload


def test_a_worker_started_on_a_full_redis_drains_it(private_redis, r, caplog):
    """Producers fill Redis until it refuses them, as when no worker runs for
    a while. A worker started then runs every job once, and the memory used
    falls: a completed job keeps no payload."""
    server = private_redis(aof=False)
    app = App(server.url)
    deliver = app.task(tasks.deliver.fn, name=tasks.deliver.name)
    client = server.client()
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", client.info("memory")["used_memory"] + 2_000_000)
    queued = []
    with pytest.raises(RedisFull) as refused:
        while len(queued) < 100_000:
            queued.append(deliver.enqueue(f"j{len(queued)}", BODY).id)
    what = f"job {refused.value.job_id} of {tasks.deliver.name} was not enqueued in queue 'default'"
    assert what in str(refused.value)
    assert len(queued) > 1000
    used_full = client.info("memory")["used_memory"]
    # Full, well over the limit: not a few bytes under it once the producer's
    # buffers are freed, as it would stay with producers still pushing.
    client.config_set("maxmemory", used_full - 100_000)

    with caplog.at_level(logging.WARNING, logger="tarefa.worker"):
        drain(Worker(app, concurrency=20, burst=True), lambda: caplog.text[-2000:])
    assert "Redis is full (maxmemory reached): it refused this worker's registration" in caplog.text
    runs = [tag.decode() for tag in r.lrange("test:runs", 0, -1)]
    assert sorted(runs) == sorted(f"j{i}" for i in range(len(queued)))  # each ran once
    assert app.queue("default").counts()["completed"] == len(queued)
    used_drained = client.info("memory")["used_memory"]
    assert used_drained < used_full, (used_full, used_drained)
    again = deliver.with_options(job_id=refused.value.job_id).enqueue("again", BODY)
    assert again.created  # the refused id, enqueued now that there is room
    app.close()
