"""A worker on a Redis that evicts keys when full (maxmemory-policy
allkeys-lru, common on a shared Redis): it says so loudly as it starts, and
every job Redis evicted is counted and logged as lost, by id, never skipped
in silence."""

from __future__ import annotations

import logging
import time

from tarefa import App, manage
from tarefa.worker import Worker

from .. import tasks
from ..waits import drain


def test_jobs_evicted_by_an_allkeys_lru_redis_are_counted_and_logged_lost(private_redis, r, caplog):
    server = private_redis(aof=False)
    client = server.client()
    client.config_set("maxmemory-policy", "allkeys-lru")
    app = App(server.url)
    record = app.task(tasks.record.fn, name=tasks.record.name)
    old = [job.id for job in record.enqueue_many([(f"old{i}",) for i in range(2000)])]
    # Redis's LRU clock ticks once a second: wait until these jobs are older
    # than the keys that every enqueue touches (the ready list, the counts),
    # so that they, not the queue's own keys, are what Redis evicts.
    deadline = time.monotonic() + 10
    while client.object("idletime", f"tarefa:{{default}}:job:{old[0]}") < 2:
        assert time.monotonic() < deadline, "Redis's LRU clock did not move"
        time.sleep(0.1)
    new = [record.enqueue("new").id]  # the ready list and the counts are used again
    used = client.info("memory")["used_memory"]
    client.config_set("maxmemory", used - 200_000)  # full: ~200 KB must go
    new += [job.id for job in record.enqueue_many([(f"new{i}",) for i in range(200)])]
    client.config_set("maxmemory", 0)  # nothing more is evicted while the worker runs
    tags = {i: f"old{n}" for n, i in enumerate(old)} | {new[0]: "new"}
    tags |= {i: f"new{n}" for n, i in enumerate(new[1:])}
    gone = {i for i in tags if not client.exists(f"tarefa:{{default}}:job:{i}")}
    assert 100 < len(gone) < len(old), "Redis evicted too few jobs, or more than the old ones"

    with caplog.at_level(logging.INFO, logger="tarefa.worker"):
        drain(Worker(app, concurrency=20, burst=True), lambda: caplog.text[-2000:])

    warnings = [rec.getMessage() for rec in caplog.records if rec.levelno == logging.WARNING]
    assert any("maxmemory-policy is allkeys-lru" in w and "deletes any key" in w for w in warnings)
    lost = {
        rec.getMessage().split()[1]
        for rec in caplog.records
        if rec.levelno == logging.ERROR and " lost: " in rec.getMessage()
    }
    assert lost == gone
    assert "evicted by Redis: its maxmemory-policy is allkeys-lru" in caplog.text
    ran = sorted(tag.decode() for tag in r.lrange("test:runs", 0, -1))
    assert ran == sorted(tags[i] for i in tags if i not in gone)  # the others ran, once each
    assert manage.totals(app, "default")["lost"] == len(gone)
    app.close()
