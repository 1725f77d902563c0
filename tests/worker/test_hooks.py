"""Hooks: on_success, on_failure, on_retry, per task and per App, sync or
async; a hook that raises never changes the job's outcome."""

from __future__ import annotations

import asyncio

import pytest
import redis

from tarefa import App, JobState
from tarefa.worker import Worker


def run(app: App) -> None:
    asyncio.run(Worker(app, burst=True).run())


@pytest.fixture
def calls(r):
    return lambda: [x.decode() for x in r.lrange("test:hooks", 0, -1)]


@pytest.fixture
def hook_app(redis_url, r):
    """An App with hooks of its own, on the test's flushed Redis."""
    client = redis.Redis.from_url(redis_url)

    def app_success(job, result):
        client.rpush("test:hooks", f"app success {job.task.split(':')[1]} {result}")

    async def app_failure(job, error):
        client.rpush("test:hooks", f"app failure {type(error).__name__} {error}")

    app = App(redis_url, on_success=app_success, on_failure=app_failure)

    def on_retry(job, error, delay):
        client.rpush("test:hooks", f"retry attempt {job.attempt} {error} {delay >= 0}")

    async def on_success(job, result):
        client.rpush("test:hooks", f"task success {result}")

    def exploding(job, result):
        raise RuntimeError("a broken hook")

    @app.task(name="h:flaky", retries=1, backoff=0.01, on_retry=on_retry, on_success=on_success)
    def flaky(key: str) -> str:
        if client.incr(key) == 1:
            raise ValueError("first try fails")
        return "ok"

    @app.task(name="h:fails", retries=0)
    async def fails() -> None:
        raise KeyError("missing")

    @app.task(name="h:broken", on_success=exploding)
    def broken() -> int:
        return 7

    yield app
    app.close()
    client.close()


def test_hooks_run_for_each_outcome_task_first_then_app(hook_app, calls):
    ok = hook_app.tasks["h:flaky"].enqueue("k")
    run(hook_app)
    assert ok.result(1) == "ok"
    assert calls() == [
        "retry attempt 1 first try fails True",
        "task success ok",
        "app success flaky ok",
    ]


def test_failure_hooks_get_the_exception(hook_app, calls):
    job = hook_app.tasks["h:fails"].enqueue()
    run(hook_app)
    assert job.status is JobState.FAILED
    assert calls() == ["app failure KeyError 'missing'"]


def test_a_hook_that_raises_does_not_change_the_outcome(hook_app, calls):
    job = hook_app.tasks["h:broken"].enqueue()
    run(hook_app)
    assert job.result(1) == 7 and job.status is JobState.COMPLETED
    assert calls() == ["app success broken 7"]  # the App's hook still ran


def test_hooks_are_checked_and_set_on_the_task_only(redis_url):
    app = App(redis_url)
    with pytest.raises(TypeError, match="on_success must be a function"):
        app.task(on_success="not callable")
    task = app.task(name="h:t")(lambda: None)
    with pytest.raises(TypeError, match="on_failure is set on @app.task"):
        task.with_options(on_failure=print)
