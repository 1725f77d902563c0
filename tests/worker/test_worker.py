"""The worker, in-process: running sync and async jobs, retries and back-off,
the dead-letter set, timeouts, queue order, bad input, Redis going away."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import orjson
import pytest

from tarefa import JobFailed, JobState
from tarefa.store.keys import queue_keys
from tarefa.worker import Worker, idle

from .. import tasks
from ..tasks import add, async_add, flaky, record, retry_later, whoami
from ..waits import PATIENCE, wait_for_list


def test_runs_sync_and_async_jobs(app, run_worker):
    jobs = add.enqueue_many([(i, i) for i in range(100)]) + async_add.enqueue_many(
        [(i, 1) for i in range(100)]
    )
    worker = run_worker(concurrency=20)
    assert [j.result(1) for j in jobs] == [2 * i for i in range(100)] + [i + 1 for i in range(100)]
    assert worker.processed == 200
    counts = app.queue("default").counts()
    assert counts == {
        "queued": 0,
        "waiting": 0,
        "scheduled": 0,
        "active": 0,
        "completed": 200,
        "failed": 0,
    }


def test_current_job_inside_a_job(app, run_worker):
    job = whoami.with_options(queue="ctx").enqueue()
    run_worker(["ctx"])
    assert job.result(1) == {"id": job.id, "queue": "ctx", "task": whoami.name, "attempt": 1}


@pytest.mark.parametrize("task", [tasks.report_progress, tasks.report_progress_sync])
def test_progress_is_stored_and_readable_from_the_job(app, run_worker, task):
    job = task.enqueue(4)
    assert job.progress is None
    run_worker()
    assert job.result(1) == 4
    progress = job.progress
    assert (progress["value"], progress["message"]) == (1.0, "step 4 of 4")
    assert progress["at"] > 0


def test_progress_from_a_running_job_is_visible_while_it_runs(app, r):
    """A progress report lands while the job still runs (it is not held back)."""
    job = tasks.hold.enqueue("p")
    worker = Worker(app, concurrency=2)
    thread = threading.Thread(target=asyncio.run, args=(worker.run(),))
    thread.start()
    try:
        assert r.blpop(["test:started"], timeout=PATIENCE)
        lease = r.hget(f"tarefa:{{default}}:job:{job.id}", "lease")
        assert app.store.progress("default", job.id, lease, b'{"value": 0.5}')
        assert job.progress == {"value": 0.5}
        assert not app.store.progress("default", job.id, b"999", b'{"value": 1}')  # stale
        r.rpush("test:release:p", 1)
        assert job.result(timeout=PATIENCE) == "p"
    finally:
        worker.stop()
        thread.join(PATIENCE)


def test_progress_from_a_jobs_own_event_loop_does_not_lose_its_outcome(app, run_worker):
    job = tasks.progress_from_own_loop.enqueue()
    run_worker()
    assert job.result(1) == "done"
    assert (job.info().attempts, job.info().stalls) == (1, 0)


def test_current_job_outside_a_job_is_a_clear_error():
    from tarefa import current_job

    with pytest.raises(RuntimeError, match="only available inside a running job"):
        current_job()


def test_a_bad_progress_value_fails_the_job_clearly(app, run_worker):
    job = tasks.bad_progress.enqueue()
    run_worker()
    assert job.error["type"] == "TypeError"
    assert "progress value must be a finite number" in job.error["message"]


def test_retries_with_backoff_then_succeeds(app, run_worker):
    job = flaky.enqueue("k", 2)
    run_worker()
    assert job.result(1) == 3  # third attempt
    info = job.info()
    assert info.attempts == 3 and info.state is JobState.COMPLETED


def test_exhausted_retries_end_in_the_dead_letter_set(app, run_worker):
    job = flaky.with_options(retries=1).enqueue("k", 5)
    run_worker()
    assert job.status is JobState.FAILED and job.attempts == 2
    assert job.error["type"] == "ConnectionError"
    assert app.queue("default").counts()["failed"] == 1


def test_retry_requested_by_the_job_waits_its_delay(app, run_worker):
    job = retry_later.enqueue("k", 0.3)
    run_worker()
    info = job.info()
    assert job.result(1) == "done" and info.attempts == 2
    # The second attempt started no sooner than the requested delay (Redis clock).
    assert (info.finished_at - info.enqueued_at).total_seconds() >= 0.3


def test_backoff_grows_and_is_capped():
    from tarefa.task import TaskOptions

    options = TaskOptions(backoff=1, backoff_max=5)
    for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (4, 5), (10, 5)]:
        delays = [options.retry_delay(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)


def test_a_timed_out_async_job_fails_with_timeout_error(app, run_worker):
    job = tasks.too_slow.enqueue()
    run_worker()
    with pytest.raises(JobFailed, match="TimeoutError: .*did not finish within 0.2 s"):
        job.result(1)


def test_a_timed_out_sync_job_fails_with_timeout_error(app, run_worker):
    job = tasks.too_slow_sync.enqueue()
    run_worker()
    assert job.error["type"] == "TimeoutError"


def test_a_timed_out_sync_job_keeps_its_slot_until_its_thread_returns(app, run_worker, r):
    """Its thread cannot be stopped: a later job must not queue behind it with
    its own timeout already running (it would fail without having run)."""
    # It times out after 0.2 s and returns after 5 s. Were its slot freed at its
    # timeout, the next job's 3 s would run out as it waits for the pool's one
    # thread; so would they if counted from its enqueue.
    slow = tasks.too_slow_sync.enqueue(5)
    after = tasks.record.with_options(timeout=3).enqueue("after")
    run_worker(concurrency=1)
    assert slow.error["type"] == "TimeoutError"
    assert after.result(1) == "after" and after.attempts == 1
    assert r.lrange("test:runs", 0, -1) == [b"after"]


@pytest.mark.parametrize(
    "task, error_type",
    [
        (tasks.raises_cancelled, "CancelledError"),
        (tasks.raises_keyboard_interrupt, "KeyboardInterrupt"),
        (tasks.raises_system_exit, "SystemExit"),
    ],
)
def test_a_job_raising_a_base_exception_fails_and_the_worker_goes_on(
    app, run_worker, task, error_type
):
    bad = task.enqueue()
    good = add.enqueue(1, 2)
    run_worker(concurrency=2)  # returns: the burst worker was neither stuck nor killed
    assert bad.status is JobState.FAILED and bad.error["type"] == error_type
    assert good.result(1) == 3


def test_concurrency_is_never_exceeded(app, run_worker, r):
    """The exchange loop and the blocking wait both lease jobs: together they
    must never run more than -c at once."""
    task = tasks.overlap
    task.with_options(delay=0.3).enqueue_many([(f"d{i}",) for i in range(30)])
    task.enqueue_many([(f"n{i}",) for i in range(10)])
    run_worker(concurrency=2)
    assert r.llen("test:runs") == 40
    assert max(int(n) for n in r.lrange("test:overlap", 0, -1)) <= 2


def test_per_call_options_override_the_task(app, run_worker):
    job = tasks.always_fails.with_options(retries=0, result_ttl=0).enqueue("x")
    ok = add.with_options(result_ttl=0).enqueue(1, 1)
    run_worker()
    assert job.attempts == 1 and job.status is JobState.FAILED
    assert not app.store.job("default", ok.id)  # result not kept: the job is gone


def test_queues_listed_first_are_served_first(app, run_worker):
    record.with_options(queue="low").enqueue_many([("low",)] * 5)
    record.with_options(queue="high").enqueue_many([("high",)] * 5)
    run_worker(["high", "low"], concurrency=1)
    runs = [x.decode() for x in app.store.clients.sync.lrange("test:runs", 0, -1)]
    assert runs == ["high"] * 5 + ["low"] * 5


def test_priorities_order_the_queue(app, run_worker, r):
    record.with_options(priority=10).enqueue("low")
    record.enqueue("plain")
    record.with_options(priority=1).enqueue_many([("high1",), ("high2",)])
    assert app.queue("default").counts()["queued"] == 4
    run_worker(concurrency=1)
    runs = [x.decode() for x in r.lrange("test:runs", 0, -1)]
    assert runs == ["plain", "high1", "high2", "low"]


def _enqueue_raw(app, job_id: str, task: str, payload: bytes) -> None:
    app.store.enqueue("default", job_id, (0, 0, ""), ["task", task, "payload", payload])


@pytest.mark.parametrize(
    "task, payload, error_type, message",
    [
        ("shop.jobs:gone", b"[[],{}]", "UnknownTask", "no task named 'shop.jobs:gone'"),
        ("tests.tasks:add", b"\xffnot json", "PayloadError", "cannot decode"),
        ("tests.tasks:add", b'{"a": 1}', "PayloadError", "must be \\[args, kwargs\\]"),
        ("tests.tasks:add", b"\x80\x04pickled", "PayloadError", "pickled"),
        ("tests.tasks:add", b"[[1],{}]", "ArgumentError", "missing a required argument"),
        ("tests.tasks:add", b'[[1,2],{"c":3}]', "ArgumentError", "unexpected keyword"),
        ("tests.tasks:returns_unstorable", b"[[],{}]", "ResultError", "cannot be stored"),
    ],
)
def test_bad_input_fails_the_job_clearly_and_the_worker_goes_on(
    app, run_worker, task, payload, error_type, message
):
    _enqueue_raw(app, "bad", task, payload)
    good = add.enqueue(1, 2)
    run_worker()
    bad = app.job("bad", queue="default")
    assert bad.status is JobState.FAILED
    assert bad.attempts == 1  # not retried: running it again cannot help
    assert bad.error["type"] == error_type
    with pytest.raises(JobFailed, match=message):
        bad.result(1)
    assert good.result(1) == 3


def test_burst_waits_for_scheduled_retries(app, run_worker):
    job = flaky.enqueue("slow", 1)
    run_worker()
    assert job.status is JobState.COMPLETED


def test_worker_options_are_checked(app):
    with pytest.raises(ValueError, match="concurrency"):
        Worker(app, concurrency=0)
    with pytest.raises(ValueError, match="at least one queue"):
        Worker(app, [])
    with pytest.raises(ValueError, match="invalid queue name"):
        Worker(app, ["no spaces"])
    with pytest.raises(ValueError, match="lease"):
        Worker(app, lease=0)
    with pytest.raises(ValueError, match="max_jobs"):
        Worker(app, max_jobs=0)


@pytest.mark.parametrize("burst", [False, True])
def test_a_worker_with_max_jobs_runs_that_many_then_stops_by_itself(app, burst, caplog):
    """With more slots than its max_jobs leave, it leases no more than that
    (none to hand back), lets them end, and stops: no signal, no grace cut."""
    caplog.set_level(logging.DEBUG, logger="tarefa.worker")
    jobs = add.enqueue_many([(i, 0) for i in range(12)])
    worker = Worker(app, concurrency=10, max_jobs=5, burst=burst)
    thread = threading.Thread(target=asyncio.run, args=(worker.run(),))
    thread.start()
    thread.join(PATIENCE)
    assert not thread.is_alive(), "the worker did not stop after its max_jobs"
    assert worker.retired and worker.processed == 5
    states = [j.status for j in jobs]
    assert states.count(JobState.COMPLETED) == 5 and states.count(JobState.QUEUED) == 7
    assert "handed back" not in caplog.text  # it leased no job it could not start
    assert "5 jobs run (max_jobs): stopping" in caplog.text
    assert app.store.workers() == []  # unregistered, as on SIGTERM


def test_a_burst_worker_with_max_jobs_left_ends_when_the_queue_is_empty(app, run_worker):
    jobs = add.enqueue_many([(i, 0) for i in range(3)])
    worker = run_worker(concurrency=10, max_jobs=5)  # 5 would leave 5 slots of 10
    assert [j.result(1) for j in jobs] == [0, 1, 2]
    assert not worker.retired


def test_idle_worker_wakes_on_enqueue_and_registers_itself(app, r):
    worker = Worker(app, ["wake"], concurrency=2)
    thread = threading.Thread(target=asyncio.run, args=(worker.run(),))
    thread.start()
    try:
        job = record.with_options(queue="wake").enqueue("x")
        assert job.result(timeout=PATIENCE) == "x"
        registered = app.store.workers()
        assert [w["id"] for w in registered] == [worker.id]
        assert registered[0]["queues"] == "wake"
    finally:
        worker.stop()
        thread.join(PATIENCE)
    assert not thread.is_alive()
    assert app.store.workers() == []  # unregistered on exit


def test_an_idle_worker_takes_every_new_job_without_waiting_for_its_idle_check(app, monkeypatch):
    """A producer trickling jobs in (a web app) while the worker is between
    calls: no job may sit in ready until the worker's safety-net check."""
    # A check a minute apart: a job left to it would wait that long, far more
    # than a loaded machine delays one the worker was woken for.
    monkeypatch.setattr(idle, "IDLE_CHECK", 60.0)
    worker = Worker(app, ["trickle"], concurrency=4)
    thread = threading.Thread(target=asyncio.run, args=(worker.run(),))
    thread.start()
    try:
        task = add.with_options(queue="trickle")
        jobs = []
        for i in range(300):
            jobs.append(task.enqueue(i, 0))
            time.sleep(0.002)  # the producer's pace (part of the scenario, not a wait)
        assert [job.result(timeout=PATIENCE) for job in jobs] == list(range(300))
    finally:
        worker.stop()
        thread.join(PATIENCE)
    waits = [(j.info().started_at - j.info().enqueued_at).total_seconds() for j in jobs]
    assert max(waits) < 10, f"a job waited {max(waits):.2f} s for an idle worker"


def test_a_delayed_job_starts_when_due_on_an_idle_worker(app, monkeypatch):
    """The idle worker sleeps until the next due time (not until its safety-net
    check), and a newly enqueued earlier job shortens that sleep."""
    # The check and the far job a minute away: a worker that slept toward
    # either would start the near job a minute late, far later than a loaded
    # machine makes it.
    monkeypatch.setattr(idle, "IDLE_CHECK", 60.0)
    worker = Worker(app, ["later"], concurrency=2)
    thread = threading.Thread(target=asyncio.run, args=(worker.run(),))
    thread.start()
    try:
        task = add.with_options(queue="later")
        far = task.with_options(delay=60).enqueue(1, 1)  # the worker sleeps toward this...
        near = task.with_options(delay=0.3).enqueue(2, 2)  # ...until this wakes it
        assert near.result(timeout=PATIENCE) == 4
        assert far.status == "scheduled"
    finally:
        worker.stop()
        thread.join(PATIENCE)
    info = near.info()
    late = (info.started_at - info.enqueued_at).total_seconds() - 0.3
    assert -0.01 <= late < 10, f"started {late:.3f} s after it was due"


def test_a_stopping_worker_ends_a_task_that_dropped_a_cancellation(app, r):
    """On Python 3.11, the asyncio.wait_for that redis.asyncio puts around each
    send can drop a cancellation (the send completes as it lands), and the
    task it was meant to end goes on: the heartbeat did, and held a stopped
    worker for ever. A stopping worker cancels its heartbeat, its wait for
    work and the jobs past its grace until each has ended; here, a job."""
    job = tasks.drops_a_cancellation.enqueue("d")
    worker = Worker(app, concurrency=1, grace=0.1)
    thread = threading.Thread(target=asyncio.run, args=(worker.run(),))
    thread.start()
    try:
        assert wait_for_list(r, "test:started", 1) == ["d"]
        worker.stop()
        thread.join(PATIENCE)
        assert not thread.is_alive(), "the worker did not stop"
    finally:
        if thread.is_alive():  # still waiting for the job: let it end
            r.rpush("test:release:d", 1)
            thread.join(PATIENCE)
    info = job.info()
    assert (info.state, info.attempts) == ("queued", 0)  # handed back, past the grace
    assert r.lrange("test:runs", 0, -1) == []


def test_worker_survives_redis_going_away_and_delivers_outcomes(private_redis, r):
    """Redis stops while jobs run: the worker keeps them, reconnects with
    back-off, and reports their outcomes when Redis is back."""
    from tarefa import App

    server = private_redis()
    app = App(server.url)
    hold = app.task(tasks.hold.fn, name=tasks.hold.name)
    jobs = hold.enqueue_many([("a", 30), ("b", 30)])
    worker = Worker(app, concurrency=5)
    thread = threading.Thread(target=asyncio.run, args=(worker.run(),))
    thread.start()
    try:
        # The jobs signal on the session's Redis (TAREFA_URL), the queue is on `server`.
        assert sorted(wait_for_list(r, "test:started", 2)) == ["a", "b"]
        server.kill()  # SIGKILL: the AOF has every acknowledged write
        server.start()
        r.rpush("test:release:a", 1)
        r.rpush("test:release:b", 1)
        assert [j.result(timeout=PATIENCE) for j in jobs] == ["a", "b"]
        assert app.queue("default").counts()["completed"] == 2
    finally:
        worker.stop()
        thread.join(PATIENCE)
    assert not thread.is_alive()


def test_payload_is_plain_json_other_languages_can_write(app, run_worker):
    """Another service can enqueue by writing the same fields (as the REST API will)."""
    _enqueue_raw(app, "from-node", "tests.tasks:add", orjson.dumps([[2], {"b": 5}]))
    run_worker()
    assert app.job("from-node").result(1) == 7
    assert queue_keys("default").job("from-node").startswith("tarefa:{default}:")


def test_stopping_a_worker_that_has_ended_does_nothing(app):
    """A supervisor may stop a worker after it ended (a burst ran out): no
    "Event loop is closed" error."""
    tasks.add.enqueue(1, 2)
    worker = Worker(app, burst=True)
    asyncio.run(worker.run())
    worker.stop()
    worker.stop(now=True)
