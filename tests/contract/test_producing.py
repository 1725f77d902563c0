"""What a producer relies on, whatever the backend (conftest.py): handles,
de-duplication, results and failures, retry, ids asked for without their
queue, arguments refused before anything is sent."""

from __future__ import annotations

import asyncio

import pytest

from tarefa import AmbiguousJob, JobFailed, JobNotFound, JobState

from ..tasks import add, async_add, flaky


def test_a_job_runs_and_its_handle_has_its_result(backend):
    job = add.enqueue(2, 3)
    assert job.created and job.queue == "default"
    backend.run_jobs()
    assert job.status is JobState.COMPLETED and job.result(timeout=0) == 5
    info = job.info()
    assert (info.task, info.attempts, info.error) == (add.name, 1, None)
    assert backend.app.job(job.id) == job


def test_many_and_async_enqueues_run_alike(backend):
    jobs = add.enqueue_many([(i, i) for i in range(5)])

    async def produce():
        return await async_add.aenqueue(20, 22)

    later = asyncio.run(produce())
    backend.run_jobs()
    assert [j.result(timeout=0) for j in jobs] == [0, 2, 4, 6, 8]
    assert later.result(timeout=0) == 42


def test_a_job_id_makes_one_job_per_queue(backend):
    first = add.with_options(job_id="order-1").enqueue(1, 1)
    again = add.with_options(job_id="order-1").enqueue(5, 5)
    assert first.created and not again.created and again.id == "order-1"
    backend.run_jobs()
    assert again.result(timeout=0) == 2  # the first one's
    elsewhere = add.with_options(job_id="order-1", queue="mail").enqueue(3, 3)
    assert elsewhere.created
    with pytest.raises(AmbiguousJob) as ambiguous:
        backend.app.job("order-1")
    assert ambiguous.value.queues == ["default", "mail"]
    assert backend.app.job("order-1", queue="mail") == elsewhere
    with pytest.raises(JobNotFound):
        backend.app.job("order-2")


def test_a_failed_job_says_why_and_can_be_retried(backend, r):
    job = flaky.with_options(retries=0).enqueue("contract", 1)  # fails once
    backend.run_jobs()
    assert job.status is JobState.FAILED
    with pytest.raises(JobFailed) as failed:
        job.result(timeout=0)
    assert (failed.value.error_type, failed.value.message) == ("ConnectionError", "failure 1")
    assert backend.app.queue("default").counts()["failed"] == 1
    job.retry()
    backend.run_jobs()
    assert job.status is JobState.COMPLETED and job.result(timeout=0) == 1
    with pytest.raises(Exception, match="only a failed job"):
        job.retry()  # it has not failed


def test_bad_arguments_are_refused_before_anything_is_sent(backend):
    with pytest.raises(TypeError):
        add.enqueue(1)
    with pytest.raises(TypeError):
        add.enqueue_many([(1, 1), (1, 2, 3)])
    assert sum(backend.app.queue("default").counts().values()) == 0
