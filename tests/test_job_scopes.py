"""App.around_each_job: a framework's context around every job, entered where
the job runs (a pool thread, the event loop, a pool process, testing mode's
caller); and Task.enqueue_on_commit with the hook a framework gives it."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from tarefa import App
from tarefa.worker import Worker

from . import scoped_app
from .scoped_app import async_job, failing_job, process_job, sync_job
from .tasks import add


@pytest.fixture
def scoped(r):
    scoped_app.app._store = None
    scoped_app.exits.clear()
    yield scoped_app.app
    scoped_app.app.close()


def run_burst(app: App) -> None:
    asyncio.run(Worker(app, ["default"], burst=True, concurrency=4).run())


def test_every_job_runs_inside_the_scopes_where_it_runs(scoped):
    jobs = [sync_job.enqueue(), async_job.enqueue(), process_job.enqueue()]
    run_burst(scoped)
    sync_seen, async_seen, process_seen = (job.result(timeout=0) for job in jobs)
    for seen in (sync_seen, async_seen, process_seen):
        assert seen["outer"] and seen["nested"], seen  # both, the first outermost
    assert sync_seen["thread"] != threading.get_ident()  # a pool thread, in the scope
    assert async_seen["thread"] == threading.get_ident()  # the worker's loop
    assert process_seen["pid"] != os.getpid()  # a pool process imports the app's scopes
    assert scoped_app.exits == ["inner", "outer"] * 2  # left, inner first (this process)


def test_the_scopes_are_left_when_a_job_raises(scoped):
    job = failing_job.enqueue()
    run_burst(scoped)
    assert job.status.value == "failed" and job.error["message"] == "inside the scope"
    assert scoped_app.exits == ["inner", "outer"]


def test_testing_mode_runs_the_scopes_too(scoped):
    with scoped.testing():
        assert sync_job.enqueue().result(timeout=0)["outer"]


def test_a_scope_must_be_callable():
    with pytest.raises(TypeError, match="a callable returning a context manager"):
        App().around_each_job(object())


def test_enqueue_on_commit_waits_for_the_hook_and_checks_arguments_at_once(app, r):
    with pytest.raises(RuntimeError, match="add 'tarefa.contrib.django' to INSTALLED_APPS"):
        add.enqueue_on_commit(1, 2)
    committed = []
    app.on_commit = committed.append  # a transaction that commits when told
    try:
        job = add.enqueue_on_commit(1, 2)
        assert job.queue == "default" and app.backend.job("default", job.id) is None
        with pytest.raises(TypeError, match="add: .*'b'"):
            add.enqueue_on_commit(1)  # said now, not at the commit
        assert len(committed) == 1
        committed[0]()  # the commit
        assert job.status.value == "queued"
        same = add.with_options(job_id="order-1").enqueue_on_commit(3, 4)
        committed[1]()
        assert same.id == "order-1" and app.job("order-1").status.value == "queued"
    finally:
        app.on_commit = None
