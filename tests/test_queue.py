"""Queue controls: pause, resume and purge; the registry of queues."""

from __future__ import annotations

import asyncio
import threading

from tarefa.store import base
from tarefa.worker import Worker

from .tasks import add, hold, record
from .waits import PATIENCE, wait_for_list


def test_a_paused_queue_is_not_served_until_resumed(app, r):
    queue = app.queue("default")
    running = hold.enqueue("running")
    worker = Worker(app, concurrency=4)
    thread = threading.Thread(target=asyncio.run, args=(worker.run(),))
    thread.start()
    try:
        assert wait_for_list(r, "test:started", 1) == ["running"]
        queue.pause()
        assert queue.paused
        waiting = record.enqueue("waiting")
        r.rpush("test:release:running", 1)
        assert running.result(timeout=PATIENCE) == "running"  # running jobs finish
        assert waiting.status == "queued"  # ...and nothing new starts
        assert queue.resume() is True and not queue.paused
        assert waiting.result(timeout=PATIENCE) == "waiting"  # resumed at once
    finally:
        worker.stop()
        thread.join(PATIENCE)
    assert queue.resume() is False  # not paused any more


def test_pausing_one_queue_leaves_the_others_running(app):
    app.queue("slow").pause()
    paused = record.with_options(queue="slow").enqueue("s")
    other = record.with_options(queue="fast").enqueue("f")
    worker = Worker(app, ["slow", "fast"], concurrency=2, burst=False)
    thread = threading.Thread(target=asyncio.run, args=(worker.run(),))
    thread.start()
    try:
        assert other.result(timeout=PATIENCE) == "f"
        assert paused.status == "queued"
    finally:
        worker.stop()
        thread.join(PATIENCE)


def test_a_burst_worker_does_not_wait_on_a_paused_queue(app, run_worker):
    app.queue("default").pause()
    job = record.enqueue("x")
    run_worker()  # returns: paused work cannot run, so the queues count as drained
    assert job.status == "queued"


def test_purge_deletes_every_job_of_the_queue_and_keeps_its_settings(app, run_worker, r):
    queue = app.queue("default")
    done = record.enqueue("done")
    run_worker()
    queued = record.enqueue("queued")
    keyed = record.with_options(key="acct").enqueue("keyed")
    later = record.with_options(delay=60).enqueue("later")
    waiting = later.then(record, "waiting")
    queue.pause()
    other = record.with_options(queue="other").enqueue("other")
    assert queue.purge() > 0
    assert set(queue.counts().values()) == {0}
    for job in (done, queued, keyed, later, waiting):
        assert not app.store.job("default", job.id)
    assert queue.paused  # settings stay
    assert other.status == "queued"  # other queues are untouched
    queue.resume()
    assert record.enqueue("after").status == "queued"


def test_a_queue_whose_redis_lost_its_data_is_listed_again_by_later_enqueues(app, r, monkeypatch):
    """A Redis that lost its data (no persistence, an empty replica promoted)
    forgot the registry of queues too: a producer that goes on enqueuing
    names its queue again, every REGISTER_AGAIN seconds, sync or async."""
    add.enqueue(1, 2)
    r.flushall()
    kept = add.enqueue(1, 2)
    assert kept.status.value == "queued" and app.queues() == []  # until the interval is up
    monkeypatch.setattr(base, "REGISTER_AGAIN", 0.0)
    job = add.enqueue(3, 4)
    assert app.queues() == ["default"]
    assert app.job(job.id).id == job.id  # found without naming its queue
    r.flushall()
    asyncio.run(add.aenqueue(5, 6))
    assert app.queues() == ["default"]
