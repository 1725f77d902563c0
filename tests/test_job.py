"""Job handles: status, info, result (sync and asyncio), errors, retry."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tarefa import JobFailed, JobNotFound, JobState, TarefaError
from tarefa.worker import Worker

from .tasks import add, always_fails, async_add, hold
from .waits import PATIENCE


def test_result_of_a_completed_job(app, run_worker):
    job = add.enqueue(2, 3)
    run_worker()
    assert job.result(timeout=5) == 5
    info = job.info()
    assert info.state is JobState.COMPLETED and info.attempts == 1
    assert info.enqueued_at <= info.started_at <= info.finished_at
    assert info.task == "tests.tasks:add" and info.worker


def test_aresult(app, run_worker):
    job = async_add.enqueue(2, 3)
    run_worker()
    assert asyncio.run(job.aresult(timeout=5)) == 5


def test_result_raises_the_remote_error_with_its_traceback(app, run_worker):
    job = always_fails.enqueue("boom")
    run_worker()
    with pytest.raises(JobFailed) as caught:
        job.result(timeout=5)
    assert caught.value.error_type == "ValueError"
    assert caught.value.message == "boom"
    assert "raise ValueError(message)" in caught.value.traceback
    assert job.status is JobState.FAILED and job.attempts == 3  # 1 + 2 retries


def test_result_times_out_with_a_clear_error(app):
    job = add.enqueue(1, 1)
    with pytest.raises(TimeoutError, match="has not finished within 0.1 s"):
        job.result(timeout=0.1)
    with pytest.raises(TimeoutError):
        asyncio.run(job.aresult(timeout=0.1))


def test_result_with_timeout_0_just_looks(app):
    job = add.enqueue(1, 1)
    with pytest.raises(TimeoutError):
        job.result(timeout=0)
    with pytest.raises(ValueError, match="timeout must be"):
        job.result(timeout=-1)
    with pytest.raises(ValueError, match="timeout must be"):
        job.result(timeout="5")


def test_a_stale_wake_up_does_not_end_a_later_wait_early(app, run_worker):
    """A waiter that gave up leaves a token behind when the job ends; the next
    wait on the job (after a retry) must still wait for the new end."""
    job = always_fails.enqueue("boom")
    with pytest.raises(TimeoutError):
        job.result(timeout=0.05)  # registers a waiter, then gives up
    run_worker()  # the end pushes a token nobody takes
    job.retry()
    with pytest.raises(TimeoutError, match="it is queued"):
        job.result(timeout=0.3)  # woken by the stale token: must wait on, then time out


def test_result_blocks_until_a_worker_finishes_the_job(app, r):
    job = hold.enqueue("waiter", 10)
    worker = Worker(app, concurrency=2)
    thread = threading.Thread(target=asyncio.run, args=(worker.run(),))
    thread.start()
    try:
        assert r.blpop(["test:started"], timeout=PATIENCE)
        r.rpush("test:release:waiter", 1)
        assert job.result(timeout=PATIENCE) == "waiter"  # woken by the job's end, not by polling
    finally:
        worker.stop()
        thread.join(PATIENCE)


def test_unknown_job_id(app):
    with pytest.raises(JobNotFound):
        app.job("nope")
    with pytest.raises(JobNotFound):
        app.job("nope", queue="default").info()
    with pytest.raises(JobNotFound):
        app.job("nope", queue="default").result(timeout=0.1)


def test_app_job_finds_the_queue(app):
    job = add.with_options(queue="elsewhere").enqueue(1, 2)
    found = app.job(job.id)
    assert found == job and found.queue == "elsewhere"


def test_retry_a_failed_job_from_the_dead_letter_set(app, run_worker):
    job = always_fails.enqueue("boom")
    run_worker()
    assert [j.id for j in app.queue("default").failed_jobs()] == [job.id]
    job.retry()
    assert job.status is JobState.QUEUED and job.attempts == 0
    assert app.queue("default").counts()["failed"] == 0
    run_worker()
    assert job.status is JobState.FAILED and job.attempts == 3


def test_run_a_scheduled_job_now_keeps_its_priority(app, run_worker):
    later = add.with_options(delay=600, priority=1).enqueue(1, 2)
    first = add.with_options(priority=5).enqueue(0, 0)
    later.run_now()
    counts = app.queue("default").counts()
    assert later.status is JobState.QUEUED and (counts["scheduled"], counts["queued"]) == (0, 2)
    assert app.store.job_ids("default", "queued", 0, 1) == [later.id]  # priority 1 first
    run_worker()
    assert later.result(timeout=0) == 3 and first.status is JobState.COMPLETED
    with pytest.raises(TarefaError, match="only a scheduled job can run now; .* is completed"):
        later.run_now()
    with pytest.raises(JobNotFound):
        app.job("nope", queue="default").run_now()


def test_only_failed_jobs_can_be_retried(app):
    job = add.enqueue(1, 2)
    with pytest.raises(TarefaError, match="only a failed job can be retried; .* is queued"):
        job.retry()
    with pytest.raises(JobNotFound):
        app.job("nope", queue="default").retry()
    with pytest.raises(TarefaError, match="is queued"):
        asyncio.run(job.aretry())
