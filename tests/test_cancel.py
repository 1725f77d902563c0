"""Cancelling jobs: queued, scheduled, prioritized, running (async and sync),
and ones that already ended."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tarefa import JobCancelled, JobNotFound, JobState
from tarefa.worker import Worker

from .tasks import add, ahold, record, until_cancelled
from .waits import PATIENCE, wait_for_list


@pytest.mark.parametrize(
    "options",
    [{}, {"delay": 60}, {"priority": 3}],
    ids=["queued", "scheduled", "prioritized"],
)
def test_a_cancelled_job_never_runs(app, run_worker, r, options):
    doomed = record.with_options(**options).enqueue("doomed")
    kept = record.enqueue("kept")
    assert doomed.cancel() is True
    assert doomed.status is JobState.CANCELLED
    assert app.queue("default").counts()["queued"] == 1
    run_worker()
    assert kept.result(1) == "kept"
    assert r.lrange("test:runs", 0, -1) == [b"kept"]
    with pytest.raises(JobCancelled):
        doomed.result(timeout=1)


def test_cancel_wakes_a_caller_waiting_for_the_result(app):
    job = record.with_options(delay=60).enqueue("x")
    threading.Timer(0.1, job.cancel).start()
    with pytest.raises(JobCancelled):
        job.result(timeout=PATIENCE)  # woken by the cancel, not by its time-out


def test_a_job_that_ended_is_not_cancelled(app, run_worker):
    job = add.enqueue(1, 2)
    run_worker()
    assert job.cancel() is False
    assert job.status is JobState.COMPLETED and job.result(1) == 3
    with pytest.raises(JobNotFound):
        app.job("nope", queue="default").cancel()
    assert asyncio.run(job.acancel()) is False


def run_in_thread(worker: Worker) -> threading.Thread:
    thread = threading.Thread(target=asyncio.run, args=(worker.run(),))
    thread.start()
    return thread


def test_a_running_async_job_is_stopped_within_a_heartbeat(app, r):
    job = ahold.enqueue("a", 30)
    worker = Worker(app, concurrency=1, lease=0.4)  # heartbeat every 0.1 s
    thread = run_in_thread(worker)
    try:
        assert wait_for_list(r, "test:started", 1) == ["a"]
        assert job.cancel() is True
        after = add.enqueue(1, 1)  # the slot it held is free again
        assert after.result(timeout=PATIENCE) == 2
        assert job.status is JobState.CANCELLED
    finally:
        worker.stop()
        thread.join(PATIENCE)
    assert r.lrange("test:runs", 0, -1) == []  # it never got to the end


def test_a_running_sync_job_sees_cancelled_and_its_outcome_is_discarded(app, r):
    job = until_cancelled.enqueue("s")
    worker = Worker(app, concurrency=2, lease=0.4)
    thread = run_in_thread(worker)
    try:
        assert wait_for_list(r, "test:started", 1) == ["s"]
        assert job.cancel() is True
        assert wait_for_list(r, "test:runs", 1) == ["s stopped"]  # it checked and stopped
    finally:
        worker.stop()
        thread.join(PATIENCE)
    assert job.status is JobState.CANCELLED  # its "stopped" result was not recorded
    with pytest.raises(JobCancelled):
        job.result(timeout=1)


@pytest.mark.parametrize("keep", [0, -1, None, "1h"])
def test_keep_must_be_a_sensible_number_of_seconds(app, keep):
    job = record.enqueue("x")
    with pytest.raises(ValueError, match="keep must be"):
        job.cancel(keep=keep)
    assert job.status is JobState.QUEUED
