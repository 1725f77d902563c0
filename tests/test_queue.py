"""Queue controls: pause, resume and purge."""

from __future__ import annotations

import asyncio
import threading

from tarefa.worker import Worker

from .tasks import hold, record
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
