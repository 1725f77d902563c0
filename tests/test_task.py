"""Defining tasks and enqueueing them: sync, asyncio, in bulk, by name, de-dup,
and the errors a bad call gets at the caller."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from tarefa import AmbiguousJob, App, JobNotFound, JobState
from tarefa.store.keys import queue_keys

from .tasks import add, async_add, record


def test_a_task_is_still_callable_as_a_function(app):
    assert add(2, 3) == 5
    assert add.name == "tests.tasks:add"
    assert app.tasks["tests.tasks:add"] is add


def test_enqueue_returns_a_queued_job(app, r):
    job = add.enqueue(1, 2)
    assert job.created and job.queue == "default"
    assert job.status is JobState.QUEUED
    assert r.llen(queue_keys("default").ready) == 1
    assert app.queue("default").counts()["queued"] == 1
    assert "default" in app.queues()


def test_aenqueue_from_asyncio(app):
    async def produce():
        return [await async_add.aenqueue(i, i) for i in range(3)]

    jobs = asyncio.run(produce())
    assert len({j.id for j in jobs}) == 3
    assert app.queue("default").counts()["queued"] == 3


def test_enqueue_many_is_one_batch_of_jobs(app):
    jobs = record.enqueue_many([("a",), ("b",), {"tag": "c"}])
    assert [j.created for j in jobs] == [True, True, True]
    assert app.queue("default").counts()["queued"] == 3
    assert record.enqueue_many([]) == []


def test_enqueue_many_of_a_large_list_goes_in_chunks_in_order(app, r):
    jobs = record.enqueue_many([(str(i),) for i in range(2500)])
    assert len({j.id for j in jobs}) == 2500
    ready = [x.decode() for x in r.lrange(queue_keys("default").ready, 0, -1)]
    assert ready[::-1] == [j.id for j in jobs]  # FIFO across the chunks


def test_enqueue_many_checks_every_call_before_sending_any(app):
    with pytest.raises(TypeError, match="too many positional"):
        record.enqueue_many([("ok",)] * 1500 + [("a", "b")])
    assert app.queue("default").counts()["queued"] == 0


def test_job_id_is_unique_per_queue_not_per_task(app):
    """Another task with the same id in the same queue makes nothing: its
    handle is the first job's. In another queue, the id makes a second job."""
    first = add.with_options(job_id="evt_2").enqueue(1, 2)
    other_task = record.with_options(job_id="evt_2").enqueue("x")
    assert not other_task.created and other_task.info().task == add.name
    elsewhere = record.with_options(job_id="evt_2", queue="mail").enqueue("y")
    assert first.created and elsewhere.created
    assert app.store.find_queues("evt_2") == ["default", "mail"]
    # Asked for without its queue, the id is never resolved to one of them.
    with pytest.raises(AmbiguousJob, match=r"in 2 queues \('default', 'mail'\)") as raised:
        app.job("evt_2")
    assert raised.value.queues == ["default", "mail"]
    assert app.job("evt_2", queue="mail").info().task == record.name
    assert app.job("evt_2", queue="default").info().task == add.name
    with pytest.raises(JobNotFound, match="no job 'evt_3' in any queue"):
        app.job("evt_3")


def test_aenqueue_many(app):
    jobs = asyncio.run(record.aenqueue_many([("a",), ("b",)]))
    assert len(jobs) == 2 and app.queue("default").counts()["queued"] == 2


def test_job_id_deduplicates(app):
    first = add.with_options(job_id="evt_1").enqueue(1, 2)
    again = add.with_options(job_id="evt_1").enqueue(3, 4)
    assert first.created and not again.created
    assert again.id == "evt_1"
    assert app.queue("default").counts()["queued"] == 1


def test_a_retried_enqueue_of_a_generated_id_still_reports_created():
    """If a reply is lost and the call retried, the retry finds the job the
    first try made: with an id made here, that job can only be this call's."""
    from tarefa.records import Added, Enqueued
    from tarefa.task import CallOptions

    found = Enqueued(Added.EXISTING, "x", "queued")
    assert CallOptions().created(found) is True
    assert CallOptions(job_id="evt_1").created(found) is False
    assert CallOptions(job_id="evt_1").created(Enqueued(Added.CREATED, "evt_1")) is True
    assert CallOptions().created(Enqueued(Added.KEPT, "other", "queued")) is False


def test_at_is_judged_when_enqueueing_not_when_the_handle_was_made(app, r):
    at = datetime.now(UTC) + timedelta(seconds=5)
    handle = add.with_options(at=at)
    time.sleep(0.5)  # the handle is kept a while before use: the scenario itself
    before = time.time()
    job = handle.enqueue(1, 2)
    took_ms = (time.time() - before) * 1000
    due_ms = r.zscore(queue_keys("default").scheduled, job.id)
    # Judged at the enqueue, the due time is off by no more than the enqueue
    # took (and ms roundings); judged when the handle was made, 0.5 s later.
    assert -5 < due_ms - at.timestamp() * 1000 < took_ms + 5


def test_enqueue_by_name_without_importing_the_code(app):
    job = app.enqueue("tests.tasks:add", 1, 2)
    other = app.by_name("shop.jobs:send_email", queue="emails").enqueue("a@b.c", "Hi")
    assert job.status is JobState.QUEUED and other.queue == "emails"
    assert app.queue("emails").counts()["queued"] == 1


def test_with_options_changes_queue_delay_and_stores_overrides(app, r):
    job = add.with_options(queue="high", retries=7, delay=timedelta(seconds=60)).enqueue(1, 2)
    assert job.queue == "high" and job.status is JobState.SCHEDULED
    assert r.hget(queue_keys("high").job(job.id), "options") == b'{"retries":7}'
    at = add.with_options(at=datetime.now(UTC) + timedelta(minutes=5)).enqueue(1, 2)
    assert at.status is JobState.SCHEDULED
    assert add.options.queue == "default"  # the task itself is unchanged


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: add.enqueue(1), TypeError, "missing a required argument: 'b'"),
        (lambda: add.enqueue(1, 2, 3), TypeError, "too many positional arguments"),
        (lambda: add.enqueue(1, 2, c=3), TypeError, "unexpected keyword argument 'c'"),
        (lambda: add.enqueue(1, object()), TypeError, "object is not JSON-serializable"),
        (lambda: add.enqueue(1, datetime.now()), TypeError, "datetime is not JSON-serializable"),
        (lambda: add.enqueue({1: 2}, 1), TypeError, "str"),
        (lambda: record.enqueue_many(["abc"]), TypeError, "tuple of positional arguments"),
        (lambda: record.enqueue_many([(1, 2)]), TypeError, "too many positional"),
        (lambda: add.with_options(job_id=5), ValueError, "job_id must be"),
        (lambda: add.with_options(job_id=""), ValueError, "job_id must be"),
        (lambda: add.with_options(delay="soon"), TypeError, "delay must be a number"),
        (lambda: add.with_options(delay=-1), ValueError, "delay must be >= 0"),
        (lambda: add.with_options(at=datetime.now()), TypeError, "timezone-aware"),
        (lambda: add.with_options(priorty=1), TypeError, "unknown option 'priorty'"),
        (lambda: add.with_options(priority=0), ValueError, "priority must be positive"),
        (lambda: add.with_options(priority=1.5), TypeError, "priority must be an int"),
        (lambda: add.with_options(priority=10**7), ValueError, "priority must be <="),
        (lambda: add.with_options(queue="bad name"), ValueError, "invalid queue name"),
        (lambda: add.with_options(queue="{x}"), ValueError, "invalid queue name"),
        (lambda: add.with_options(retries=1.5), TypeError, "retries must be an int"),
        (lambda: add.with_options(timeout=0), ValueError, "timeout must be positive"),
        (lambda: add.with_options(job_id="x").enqueue_many([(1, 2)]), ValueError, "job_id"),
        (lambda: App(url=5), TypeError, "url must be a str"),
        (lambda: App(url="localhost:6379"), ValueError, "must start with redis://"),
        (lambda: App(url="http://:pw@x"), ValueError, "not 'http://\\*\\*\\*@x'"),
        (lambda: App(serializer="yaml"), ValueError, "unknown serializer"),
        (lambda: App().by_name("no_colon"), ValueError, "package.module:function"),
    ],
)
def test_a_bad_call_raises_a_clear_error_at_the_caller(app, call, error, message):
    with pytest.raises(error, match=message):
        call()
    assert app.queue("default").counts()["queued"] == 0


def test_bad_task_definitions_are_refused():
    app = App("redis://unused")
    with pytest.raises(TypeError, match="unknown option 'retry'"):
        app.task(retry=3)
    with pytest.raises(TypeError, match="set per call"):
        app.task(delay=3)
    with pytest.raises(TypeError, match="needs a function"):
        app.task(queue="x")(42)

    @app.task(name="dup:name")
    def one(): ...

    with pytest.raises(ValueError, match="two tasks are named 'dup:name'"):

        @app.task(name="dup:name")
        def two(): ...


def test_pickle_serializer_takes_any_object(redis_url, r):
    app = App(redis_url, serializer="pickle")

    @app.task
    def takes(when: datetime) -> datetime:
        return when

    job = takes.enqueue(datetime(2026, 1, 1, tzinfo=UTC))
    assert job.created


def test_enqueue_raises_when_redis_is_unreachable():
    import redis

    app = App("redis://127.0.0.1:1")  # nothing listens there
    task = app.task(add.fn, name="t:add")
    with pytest.raises(redis.ConnectionError):
        task.enqueue(1, 2)
