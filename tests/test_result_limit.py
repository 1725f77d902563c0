"""The limit on a job's serialized result (App(max_result_bytes=N), 1 MiB by
default): a bigger result fails the attempt with ResultTooLarge, is not
retried, and nothing of it is stored; in each pool, and in testing mode."""

from __future__ import annotations

import pytest

from tarefa import App, JobFailed, JobState, ResultTooLarge, TarefaError
from tarefa.store.keys import queue_keys

from .tasks import async_returns_text, returns_text, returns_text_in_process

MIB = 1024 * 1024
TASKS = [returns_text, async_returns_text, returns_text_in_process]
IDS = ["thread", "async", "process"]


@pytest.mark.parametrize("task", TASKS, ids=IDS)
def test_a_result_over_the_limit_fails_once_and_is_not_stored(app, r, run_worker, task):
    big = task.enqueue(2 * MIB)
    fits = task.enqueue(MIB - 2)  # '"xx...x"': exactly 1 MiB
    run_worker()
    assert fits.result(timeout=0) == "x" * (MIB - 2)
    assert big.status is JobState.FAILED
    assert big.attempts == 1 and r.llen("test:runs") == 2  # not retried, retries left or not
    error = big.info().error
    assert error["type"] == "ResultTooLarge"
    assert f"returned a result of {2 * MIB + 2:,} bytes serialized" in error["message"]
    assert f"over the limit of {MIB:,}" in error["message"]
    assert "not retried" in error["message"] and "App(max_result_bytes=N)" in error["message"]
    stored = r.hgetall(queue_keys(big.queue).job(big.id))
    assert b"result" not in stored
    assert max(map(len, stored.values())) < 2000  # nothing of the 2 MiB anywhere
    with pytest.raises(JobFailed, match="ResultTooLarge"):
        big.result(timeout=0)


def test_the_error_is_one_of_tarefas_and_a_value_error():
    error = ResultTooLarge("shop.jobs:export", 5_000_000, MIB)
    assert isinstance(error, TarefaError) and isinstance(error, ValueError)
    assert (error.task, error.size, error.limit) == ("shop.jobs:export", 5_000_000, MIB)
    assert str(error).startswith("shop.jobs:export returned a result of 5,000,000 bytes")


def test_the_limit_is_the_apps_and_none_lifts_it(app, r, run_worker):
    assert App("redis://localhost").max_result_bytes == MIB  # the default
    saved = app.max_result_bytes
    try:
        app.max_result_bytes = 100
        small = returns_text.enqueue(98)
        over = returns_text.enqueue(99)
        run_worker()
        assert small.status is JobState.COMPLETED and over.status is JobState.FAILED
        assert "over the limit of 100" in over.info().error["message"]
        app.max_result_bytes = None
        free = returns_text.enqueue(3 * MIB)
        run_worker()
        assert free.result(timeout=0) == "x" * 3 * MIB
    finally:
        app.max_result_bytes = saved


@pytest.mark.parametrize("limit", [0, -1, 1.5, True, "1M"])
def test_a_bad_limit_is_refused(limit):
    with pytest.raises(ValueError, match="max_result_bytes must be a positive int or None"):
        App("redis://localhost", max_result_bytes=limit)


def test_testing_mode_applies_the_same_limit():
    app = App(testing=True, max_result_bytes=100)
    failures = []

    @app.task(retries=2, on_failure=lambda job, error: failures.append(error))
    def export(size: int) -> str:
        return "x" * size

    job = export.enqueue(500)
    assert job.status is JobState.FAILED and job.attempts == 1
    assert job.info().error["type"] == "ResultTooLarge"
    [error] = failures  # the hook gets the exception itself
    assert isinstance(error, ResultTooLarge) and (error.size, error.limit) == (502, 100)
    assert export.enqueue(10).result() == "x" * 10
