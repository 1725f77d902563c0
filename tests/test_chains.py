"""Jobs that wait for jobs: chains (Job.then, depends_on) and groups with a
callback, across queues, with the failure policy and the safety net."""

from __future__ import annotations

import asyncio

import pytest

from tarefa import Group, JobCancelled, JobState
from tarefa.store.keys import queue_keys

from .tasks import add, always_fails, merge, record


def test_a_chain_runs_in_order_across_queues(app, run_worker, r):
    first = record.enqueue("first")
    second = first.then(record.with_options(queue="later"), "second")
    third = second.then(record, "third")
    assert second.status is JobState.WAITING and third.status is JobState.WAITING
    assert app.queue("later").counts()["waiting"] == 1
    run_worker(["default", "later"], concurrency=5)
    runs = [x.decode() for x in r.lrange("test:runs", 0, -1)]
    assert runs == ["first", "second", "third"]
    assert third.result(0) == "third"


def test_a_group_callback_runs_once_with_the_results_in_order(app, run_worker):
    parts = [add.enqueue(i, i) for i in range(5)]
    callback = Group(parts).then(merge, "sums")
    run_worker(concurrency=5)
    assert callback.result(0) == "sums: [0, 2, 4, 6, 8]"
    assert app.queue("default").counts()["waiting"] == 0


def test_parents_that_already_ended_release_the_job_at_once(app, run_worker):
    parts = [add.enqueue(1, 2), add.enqueue(3, 4)]
    run_worker()
    callback = Group(parts).then(merge, "late")
    assert callback.status is JobState.QUEUED
    run_worker()
    assert callback.result(0) == "late: [3, 7]"


def test_a_failed_parent_cancels_the_chain_below_it(app, run_worker):
    failing = always_fails.enqueue("boom")
    child = failing.then(record, "never")
    grandchild = child.then(record, "never either")
    other = Group([failing, add.enqueue(1, 1)]).then(merge, "never")
    run_worker()
    for job in (child, grandchild, other):
        assert job.status is JobState.CANCELLED
        assert job.error["type"] == "DependencyFailed"
        with pytest.raises(JobCancelled):
            job.result(0)
    assert "failed" in child.error["message"]


def test_a_parent_failed_by_stalls_cancels_the_chain_below_it_at_once(app, run_worker, r):
    """Its workers died (a poison job): the worker that fails it tells the jobs
    waiting for it, as it does for an outcome, not the periodic check later."""
    parent = record.enqueue("parent")
    child = parent.then(record, "child")
    k = queue_keys("default")

    async def leased_by_a_worker_that_dies():
        await app.store.fetch("default", "dying", want=1, lease_ms=1, max_stalls=0)

    asyncio.run(leased_by_a_worker_that_dies())
    r.zadd(k.active, {parent.id: 0})  # its lease ran out long ago
    run_worker(max_stalls=0)  # recovers it at start: a stall, one more than allowed
    assert parent.status is JobState.FAILED
    assert parent.error["type"] == "StalledJobError"
    assert child.status is JobState.CANCELLED
    assert child.error["type"] == "DependencyFailed"
    assert r.zscore(k.waiting, child.id) is None  # not left to the check
    assert r.lrange("test:runs", 0, -1) == []


def test_cancelling_a_parent_cancels_the_jobs_waiting_for_it(app, run_worker):
    parent = record.with_options(delay=60).enqueue("parent")
    child = parent.then(record, "child")
    assert parent.cancel()
    assert child.status is JobState.CANCELLED
    assert "cancelled" in child.error["message"]


def test_a_waiting_job_can_be_cancelled(app, run_worker, r):
    parent = record.enqueue("parent")
    child = parent.then(record, "child")
    assert child.cancel()
    run_worker()
    assert [x.decode() for x in r.lrange("test:runs", 0, -1)] == ["parent"]


def test_an_unreported_parent_end_is_caught_by_the_periodic_check(app, run_worker, r):
    parent = record.enqueue("parent")
    child = parent.then(record, "child")
    k = queue_keys("default")
    r.delete(k.dependents(parent.id))  # as if its worker died before telling the child
    run_worker()
    assert child.status is JobState.WAITING
    r.zadd(k.waiting, {child.id: 0})  # its check is due
    assert asyncio.run(app.store.check_waiting("default")) == (1, [])
    assert child.status is JobState.QUEUED


def test_async_enqueue_of_a_chain(app, run_worker):
    async def go():
        parent = await add.aenqueue(1, 1)
        child = await parent.athen(add, 2, 2)
        callback = await Group([parent, child]).athen(merge, "async")
        return callback

    callback = asyncio.run(go())
    run_worker()
    assert callback.result(0) == "async: [2, 4]"


def test_bad_dependencies_are_refused_where_they_are_given(app):
    with pytest.raises(TypeError, match="depends_on takes jobs"):
        record.with_options(depends_on=[42])
    with pytest.raises(ValueError, match="at least one"):
        record.with_options(depends_on=[])
    parent = record.enqueue("p")
    with pytest.raises(ValueError, match="no delay"):
        record.with_options(depends_on=parent, delay=5)
    with pytest.raises(ValueError, match="cannot throttle"):
        record.with_options(depends_on=parent, throttle=5)
    with pytest.raises(ValueError, match="enqueue_many"):
        record.with_options(depends_on=parent).enqueue_many([("a",)])
    with pytest.raises(TypeError, match="Group needs"):
        Group([])
    with pytest.raises(TypeError, match="missing a required argument"):
        Group([parent]).then(merge)  # merge(results, label): label is missing


def test_a_group_callback_in_a_process_pool_gets_the_results_too(app, run_worker):
    callback = Group([add.enqueue(1, 1), add.enqueue(2, 2)]).then(merge, "in a process")
    run_worker(pool="process")
    assert callback.result(0) == "in a process: [2, 4]"
