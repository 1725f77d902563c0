"""Testing mode: jobs run inline at enqueue, recorded in memory, with no Redis
and no worker, through the same checks, serializer and outcome logic."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio.connection
import redis.connection

import tarefa
import tarefa.store.base
from tarefa import (
    AmbiguousJob,
    App,
    Job,
    JobCancelled,
    JobFailed,
    JobNotFound,
    JobState,
    Retry,
    TarefaError,
    current_job,
)

UNREACHABLE = "redis://127.0.0.1:1/0"  # nothing listens there

EVENTS: list[str] = []  # what hooks and tasks saw, in order
CALLS: dict[str, int] = {}  # runs per key
BROKEN = {"now": True}
LOOPS: list[asyncio.AbstractEventLoop] = []


def app_success(job, result):
    EVENTS.append(f"app success {job.task.split(':')[1]} {result}")


async def app_failure(job, error):
    EVENTS.append(f"app failure {type(error).__name__} {error}")


app = App(UNREACHABLE, on_success=app_success, on_failure=app_failure)


@pytest.fixture(autouse=True)
def no_redis(monkeypatch):
    """Any attempt to reach Redis fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("testing mode tried to reach Redis")

    monkeypatch.setattr(redis.connection.AbstractConnection, "connect", refuse)
    monkeypatch.setattr(redis.asyncio.connection.AbstractConnection, "connect", refuse)
    monkeypatch.setattr(tarefa.store.base, "Clients", refuse)


@pytest.fixture(autouse=True)
def inline():
    """As a user's conftest would: every test in testing mode, starting empty."""
    EVENTS.clear()
    CALLS.clear()
    LOOPS.clear()
    BROKEN["now"] = True
    with app.testing():
        yield


def on_retry(job, error, delay):
    EVENTS.append(f"retry after attempt {job.attempt}: {error} in {delay:.0f} s")


def on_success(job, result):
    EVENTS.append(f"task success {result}")


def on_failure(job, error):
    EVENTS.append(f"task failure {error}")


@app.task
def add(a: int, b: int) -> int:
    CALLS["add"] = CALLS.get("add", 0) + 1
    return a + b


@app.task
def echo(value, **named) -> dict:
    return {"value": value, "type": type(value).__name__, "named": named}


@app.task
async def aadd(a: int, b: int) -> int:
    await asyncio.sleep(0)
    LOOPS.append(asyncio.get_running_loop())
    return a + b


@app.task
def where() -> dict:
    try:
        asyncio.get_running_loop()
        loop_running = True
    except RuntimeError:
        loop_running = False
    return {"thread": threading.get_ident(), "loop_running": loop_running}


@app.task
def uses_asyncio_run() -> int:
    """A sync task driving async code of its own, as it may in a worker thread."""

    async def inner() -> int:
        current_job().progress(0.5, "inner loop")
        return 7

    return asyncio.run(inner())


@app.task(retries=3, backoff=3600, on_retry=on_retry, on_success=on_success)
def flaky(key: str, failures: int) -> int:
    CALLS[key] = CALLS.get(key, 0) + 1
    if CALLS[key] <= failures:
        raise ConnectionError(f"failure {current_job().attempt}")
    return current_job().attempt


@app.task(retries=2, backoff=3600, on_failure=on_failure)
def always_fails(message: str) -> None:
    raise ValueError(message)


@app.task(retries=1, on_retry=on_retry)
def retry_once() -> int:
    if current_job().attempt == 1:
        raise Retry(delay=600, reason="not yet")
    return current_job().attempt


@app.task(retries=1)
async def retry_forever() -> None:
    raise Retry(delay=600, reason="never ready")


@app.task(retries=0)
def fails_while_broken() -> str:
    if BROKEN["now"]:
        raise RuntimeError("still broken")
    return "fixed"


@app.task
def whoami() -> dict:
    job = current_job()
    job.progress(0.25, "a quarter")
    job.progress(1, "done")
    return {"id": job.id, "queue": job.queue, "task": job.task, "attempt": job.attempt}


@app.task
async def areport(steps: int) -> int:
    for step in range(1, steps + 1):
        current_job().progress(step / steps, f"step {step} of {steps}")
        await asyncio.sleep(0)
    return steps


@app.task(retries=0, timeout=0.05)
async def too_slow() -> None:
    await asyncio.Event().wait()  # never set


@app.task
def unstorable() -> object:
    return object()


@app.task
def cancels_itself() -> str:
    me = app.job(current_job().id)
    EVENTS.append(f"cancelled: {me.cancel()}, sees it: {current_job().cancelled}")
    return "discarded"


@app.task
def deletes_itself() -> str:
    me = app.job(current_job().id)
    EVENTS.append(f"deleted: {me.delete()}, sees it: {current_job().cancelled}")
    return "discarded"


@app.task
def chain(a: int) -> int:
    return add.enqueue(a, 1).result() * 10


@app.task
def sync_calls_async(a: int) -> int:
    return aadd.enqueue(a, 1).result() * 10


@app.task
async def achain(a: int) -> list:
    sync_job, async_job = await add.aenqueue(a, 1), await aadd.aenqueue(a, 2)
    return [await sync_job.aresult(), await async_job.aresult()]


@app.task
async def async_calls_sync(a: int) -> int:
    return add.enqueue(a, 1).result()  # a blocking call inside a loop, as in production


# -- no Redis -------------------------------------------------------------------


def test_the_guard_catches_a_redis_connection():
    """The no_redis fixture is real: outside testing mode, an enqueue reaches it."""
    other = App(UNREACHABLE)

    @other.task(name="t:add")
    def add2(a: int) -> int:
        return a

    with pytest.raises(AssertionError, match="tried to reach Redis"):
        add2.enqueue(1)


def test_an_app_created_in_testing_mode_needs_no_redis():
    inline_app = App(UNREACHABLE, testing=True)

    @inline_app.task(name="t:double")
    def double(x: int) -> int:
        return 2 * x

    job = double.enqueue(21)
    assert job.status is JobState.COMPLETED and job.result() == 42
    assert inline_app.queue("default").counts()["completed"] == 1
    with pytest.raises(AttributeError, match="not available in testing mode"):
        inline_app.store.fetch  # noqa: B018 - a worker's call: there is no worker
    inline_app.close()  # nothing to close


def test_each_testing_block_starts_empty_and_gives_the_app_back():
    other = App(UNREACHABLE)

    @other.task(name="t:inc")
    def inc(x: int) -> int:
        return x + 1

    with other.testing() as inline_app:
        assert inline_app is other
        job = inc.enqueue(1)
        assert job.result() == 2
    with other.testing():
        with pytest.raises(JobNotFound):
            other.job(job.id)
        assert other.queues() == []
    assert other._store is None  # no Redis store was ever made


# -- enqueueing: the same checks, the same round trip ------------------------------


def test_enqueue_runs_the_job_at_once_and_records_it():
    job = add.enqueue(2, 3)
    assert job.created and job.queue == "default"
    assert job.status is JobState.COMPLETED
    assert job.result() == 5 and job.result(timeout=0) == 5
    info = job.info()
    assert (info.task, info.attempts, info.stalls, info.worker) == (add.name, 1, 0, "inline")
    assert info.enqueued_at <= info.started_at <= info.finished_at
    assert info.error is None
    assert app.job(job.id) == job and app.job(job.id, queue="default") == job
    twin = add.with_options(job_id=job.id, queue="mail").enqueue(1, 1)  # its id, elsewhere
    with pytest.raises(AmbiguousJob, match=r"\('default', 'mail'\)"):
        app.job(job.id)
    assert app.job(job.id, queue="mail") == twin
    assert app.queues() == ["default", "mail"]
    assert app.queue("default").counts() == {
        "queued": 0, "waiting": 0, "scheduled": 0, "active": 0, "completed": 1, "failed": 0,
    }  # fmt: skip


def test_arguments_arrive_after_a_serializer_round_trip():
    job = echo.enqueue((1, 2), when={"at": (3, 4)})
    assert job.result() == {"value": [1, 2], "type": "list", "named": {"when": {"at": [3, 4]}}}


def test_a_bad_call_raises_at_enqueue_and_runs_nothing():
    with pytest.raises(TypeError, match="add: missing a required argument: 'b'"):
        add.enqueue(1)
    with pytest.raises(TypeError, match="too many positional arguments"):
        add.enqueue(1, 2, 3)
    with pytest.raises(TypeError, match="unexpected keyword argument 'c'"):
        add.enqueue(1, b=2, c=3)
    with pytest.raises(TypeError, match="cannot serialize arguments: datetime"):
        echo.enqueue(datetime.now(UTC))
    with pytest.raises(TypeError, match="cannot serialize arguments"):
        echo.enqueue({1: "an int key"})
    with pytest.raises(TypeError, match="too many positional"):
        add.enqueue_many([(1, 2), (1, 2, 3)])
    assert "add" not in CALLS
    assert app.queues() == []


def test_the_pickle_serializer_round_trips_too():
    pickled = App(UNREACHABLE, serializer="pickle", testing=True)

    @pickled.task(name="t:kinds")
    def kinds(*values) -> list:
        return [type(v).__name__ for v in values]

    assert kinds.enqueue((1,), datetime.now(UTC)).result() == ["tuple", "datetime"]


def test_enqueue_by_name():
    assert app.enqueue(add.name, 2, 3).result() == 5
    with pytest.raises(TypeError, match="missing a required argument"):
        app.enqueue(add.name, 2)
    job = app.by_name(add.name, queue="other").enqueue(1, 1)
    assert job.queue == "other" and job.result() == 2
    assert asyncio.run(app.aenqueue(aadd.name, 1, 2)).result() == 3


def test_an_unknown_task_name_fails_as_in_a_worker():
    job = app.enqueue("shop.jobs:no_such_task", 1, x=2)
    assert job.status is JobState.FAILED
    assert job.info().error["type"] == "UnknownTask"
    with pytest.raises(JobFailed, match="UnknownTask: no task named 'shop.jobs:no_such_task'"):
        job.result()
    assert app.queue("default").failed_jobs() == [job]
    with pytest.raises(ValueError, match="looks like 'package.module:function'"):
        app.enqueue("no_colon")


# -- sync and async ---------------------------------------------------------------


def test_an_async_task_enqueued_from_sync_code_runs_on_a_fresh_loop():
    job = aadd.enqueue(2, 3)
    assert job.status is JobState.COMPLETED and job.result() == 5
    assert LOOPS[0].is_closed()


def test_aenqueue_runs_an_async_task_on_the_callers_loop():
    async def main():
        job = await aadd.aenqueue(2, 3)
        assert LOOPS == [asyncio.get_running_loop()]
        assert (await job.ainfo()).state is JobState.COMPLETED
        return await job.aresult(timeout=0)

    assert asyncio.run(main()) == 5


def test_sync_enqueue_of_an_async_task_inside_a_running_loop_says_to_use_aenqueue():
    async def main():
        with pytest.raises(RuntimeError, match=r"async task .* use `await task.aenqueue\(...\)`"):
            aadd.enqueue(1, 2)
        with pytest.raises(RuntimeError, match=r"use `await task.aenqueue_many\(...\)`"):
            aadd.enqueue_many([(1, 2)])
        with pytest.raises(RuntimeError, match="aenqueue"):
            app.enqueue(aadd.name, 1, 2)

    asyncio.run(main())
    assert LOOPS == [] and app.queues() == []  # nothing recorded, nothing ran


def test_a_sync_task_runs_in_the_callers_thread_with_no_loop_running():
    me = {"thread": threading.get_ident(), "loop_running": False}
    assert where.enqueue().result() == me

    async def main():
        # from async code too, by enqueue (it blocks, as a real enqueue does) or aenqueue
        return where.enqueue().result(), (await where.aenqueue()).result()

    assert asyncio.run(main()) == (me, me)


def test_a_sync_task_may_run_an_event_loop_of_its_own():
    job = uses_asyncio_run.enqueue()
    assert job.result() == 7
    assert job.progress["message"] == "inner loop"
    assert asyncio.run(uses_asyncio_run.aenqueue()).result() == 7


def test_enqueue_many_and_aenqueue_many():
    jobs = add.enqueue_many([(1, 2), {"a": 3, "b": 4}])
    assert [j.result() for j in jobs] == [3, 7]
    assert add.enqueue_many([]) == []
    jobs = asyncio.run(aadd.aenqueue_many([(1, 1), (2, 2), (3, 3)]))
    assert [j.result() for j in jobs] == [2, 4, 6]
    assert len(set(LOOPS)) == 1  # all on the caller's one loop
    assert app.queue("default").counts()["completed"] == 5


def test_a_task_can_enqueue_others_inline():
    assert chain.enqueue(4).result() == 50
    assert sync_calls_async.enqueue(4).result() == 50
    assert asyncio.run(achain.aenqueue(4)).result() == [5, 6]
    assert async_calls_sync.enqueue(1).result() == 2
    assert app.queue("default").counts()["completed"] == 9


# -- options ----------------------------------------------------------------------


def test_a_job_id_deduplicates():
    first = add.with_options(job_id="evt_1").enqueue(1, 2)
    again = add.with_options(job_id="evt_1").enqueue(5, 5)
    assert first.created and not again.created and again.id == "evt_1"
    assert again.result() == 3 and CALLS["add"] == 1


def test_options_per_call():
    job = always_fails.with_options(queue="emails", retries=0).enqueue("once")
    assert job.queue == "emails" and job.attempts == 1
    assert app.queue("emails").counts()["failed"] == 1
    assert app.queue("default").counts()["failed"] == 0


def test_delays_and_priorities_run_at_once():
    later = datetime.now(UTC) + timedelta(days=1)
    jobs = [
        add.with_options(delay=3600).enqueue(1, 1),
        add.with_options(delay=timedelta(hours=1), priority=5).enqueue(1, 2),
        add.with_options(at=later).enqueue(1, 3),
    ]
    assert [(j.status, j.result()) for j in jobs] == [(JobState.COMPLETED, n) for n in (2, 3, 4)]


def test_a_result_ttl_of_0_drops_the_job_at_once_as_a_worker_would():
    job = add.with_options(result_ttl=0).enqueue(1, 2)
    assert CALLS["add"] == 1
    with pytest.raises(JobNotFound):
        job.result()


# -- outcomes -----------------------------------------------------------------------


def test_retries_run_at_once_and_hooks_see_them():
    job = flaky.enqueue("k", 2)
    assert job.status is JobState.COMPLETED
    assert job.result() == 3 and job.attempts == 3 and CALLS["k"] == 3
    retries, rest = EVENTS[:2], EVENTS[2:]
    assert [e.split(" in ")[0] for e in retries] == [
        "retry after attempt 1: failure 1",
        "retry after attempt 2: failure 2",
    ]
    # the back-off a worker would have waited (with jitter), not slept here
    assert [int(e.split(" in ")[1].split()[0]) >= 1800 for e in retries] == [True, True]
    assert rest == ["task success 3", "app success flaky 3"]


def test_a_final_failure_is_recorded_with_its_error():
    job = always_fails.enqueue("nope")
    assert job.status is JobState.FAILED and job.attempts == 3
    error = job.info().error
    assert (error["type"], error["message"]) == ("ValueError", "nope")
    assert "raise ValueError(message)" in error["traceback"]
    with pytest.raises(JobFailed) as failed:
        job.result()
    assert failed.value.job_id == job.id
    assert (failed.value.error_type, failed.value.message) == ("ValueError", "nope")
    assert "raise ValueError(message)" in failed.value.traceback
    with pytest.raises(JobFailed, match="ValueError: nope"):
        asyncio.run(job.aresult())
    assert app.queue("default").failed_jobs() == [job]
    assert app.queue("default").counts()["failed"] == 1
    assert EVENTS == ["task failure nope", "app failure ValueError nope"]


def test_retry_raised_by_the_job_is_honoured():
    job = retry_once.enqueue()
    assert job.status is JobState.COMPLETED and job.result() == 2
    assert EVENTS[0] == "retry after attempt 1: not yet in 600 s"
    job = retry_forever.enqueue()
    assert job.status is JobState.FAILED and job.attempts == 2
    assert job.info().error["type"] == "Retry"


def test_an_async_timeout_fails_the_job():
    job = too_slow.enqueue()
    assert job.info().error["type"] == "TimeoutError"
    with pytest.raises(JobFailed, match="did not finish within 0.05 s"):
        job.result()


def test_a_result_that_cannot_be_stored_fails_the_job():
    with pytest.raises(JobFailed, match="ResultError: .*returned a value that cannot be stored"):
        unstorable.enqueue().result()


# -- job handles ----------------------------------------------------------------------


def test_retry_of_a_failed_job_runs_it_again_inline():
    job = fails_while_broken.enqueue()
    assert job.status is JobState.FAILED
    BROKEN["now"] = False
    job.retry()
    assert job.status is JobState.COMPLETED and job.result() == "fixed"
    assert job.attempts == 1  # attempts were reset
    assert app.queue("default").failed_jobs() == []
    with pytest.raises(TarefaError, match="only a failed job can be retried; .* is completed"):
        job.retry()
    with pytest.raises(JobNotFound):
        app.job("nope", queue="default").retry()


def test_aretry_runs_it_on_the_callers_loop():
    BROKEN["now"] = True
    job = fails_while_broken.enqueue()
    BROKEN["now"] = False

    async def main():
        await job.aretry()
        return await job.aresult()

    assert asyncio.run(main()) == "fixed"


def test_current_job_and_progress():
    job = whoami.enqueue()
    assert job.result() == {"id": job.id, "queue": "default", "task": whoami.name, "attempt": 1}
    assert job.progress["value"] == 1 and job.progress["message"] == "done"
    job = areport.enqueue(4)
    assert job.info().progress["message"] == "step 4 of 4"
    job = asyncio.run(areport.aenqueue(3))
    assert job.progress["value"] == 1 and job.progress["message"] == "step 3 of 3"


def test_cancel_of_a_finished_job_changes_nothing():
    job = add.enqueue(1, 2)
    assert job.cancel() is False
    assert asyncio.run(job.acancel()) is False
    assert job.status is JobState.COMPLETED and job.result() == 3
    with pytest.raises(JobNotFound):
        Job(app, "default", "nope").cancel()
    with pytest.raises(JobNotFound):
        app.job("nope")


def test_a_job_cancelled_while_it_runs_is_cancelled_and_its_outcome_discarded():
    job = cancels_itself.enqueue()
    assert EVENTS[0] == "cancelled: True, sees it: True"
    assert job.status is JobState.CANCELLED
    with pytest.raises(JobCancelled):
        job.result()
    assert app.queue("default").counts()["completed"] == 0


def test_a_job_deleted_while_it_runs_is_gone_and_its_outcome_discarded():
    job = deletes_itself.enqueue()
    assert EVENTS[0] == "deleted: True, sees it: True"
    with pytest.raises(JobNotFound):
        job.info()
    counts = app.queue("default").counts()
    assert counts["completed"] == counts["active"] == 0


def test_a_paused_queue_holds_its_jobs_until_resumed():
    queue = app.queue("default")
    queue.pause()
    assert queue.paused
    first, second = add.enqueue(1, 2), add.with_options(priority=1).enqueue(3, 4)
    assert first.status is JobState.QUEUED and queue.counts()["queued"] == 2
    with pytest.raises(TimeoutError, match="it is queued"):
        first.result(timeout=0)
    assert queue.resume() is True
    assert (first.result(), second.result()) == (3, 7)
    assert queue.resume() is False and not queue.paused


def test_keys_limits_and_debounce_do_not_hold_a_job_back():
    app.configure_queue("default", rate_limit="1/h", key_concurrency=1)
    try:
        keyed = add.with_options(key="acct-1")
        assert [keyed.enqueue(1, i).result(0) for i in range(2)] == [1, 2]
        assert add.with_options(debounce=60).enqueue(2, 2).result(0) == 4
    finally:
        app.queue_settings.clear()


def test_a_throttle_window_drops_repeats_as_in_production():
    """What a producer sees of a throttle is no timing: the repeats within the
    window get the first job's handle, not a job of their own."""
    throttled = add.with_options(key="acct-1", throttle=60)
    first, repeat = throttled.enqueue(1, 0), throttled.enqueue(1, 1)
    assert first.created and not repeat.created and repeat.id == first.id
    assert repeat.result(0) == 1
    other_key = add.with_options(key="acct-2", throttle=60).enqueue(1, 2)
    assert other_key.created and other_key.result(0) == 3


def test_chains_and_groups_run_inline():
    first = add.enqueue(1, 2)
    second = first.then(add, 3, 4)
    callback = tarefa.Group([first, second]).then(echo, label="sums")
    assert callback.result(0) == {"value": [3, 7], "type": "list", "named": {"label": "sums"}}
    failed = always_fails.enqueue("no")
    assert failed.then(add, 1, 1).status is JobState.CANCELLED


def test_a_child_deleted_before_its_parents_report_is_left_gone(monkeypatch):
    """Another thread may delete a child between its enqueue and its parents'
    report: as with resolve.lua, the report then neither fails nor runs it."""
    store = app.backend
    report = store.wait_for

    def deleted_meanwhile(child: str, parents: list[str]) -> None:
        queue, child_id = child.split("|")
        store.delete(queue, [child_id])
        report(child, parents)

    monkeypatch.setattr(store, "wait_for", deleted_meanwhile)
    child = add.enqueue(1, 2).then(add, 3, 4)
    assert CALLS["add"] == 1  # the parent only
    with pytest.raises(JobNotFound):
        child.info()
