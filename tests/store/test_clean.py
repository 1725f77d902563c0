"""Cleaning out ended jobs by state and age (clean.lua, manage.clean): what
goes, what stays, against a real Redis."""

from __future__ import annotations

import pytest

from tarefa import manage
from tarefa.store.browse import CLEAN_BATCH
from tarefa.store.keys import queue_keys

from ..tasks import add, always_fails

K = queue_keys("default")
DAY_MS = 86_400_000


def now_ms(r) -> int:
    seconds, micros = r.time()
    return seconds * 1000 + micros // 1000


def seed(r, state: str, n: int, ago_ms: int, prefix: str) -> list[str]:
    """``n`` jobs in an ended state as the scripts leave them (completed:
    in the completed zset, score its expiry; failed: in the dead-letter set;
    cancelled: a hash alone), ended ``ago_ms`` ago."""
    at = now_ms(r) - ago_ms
    ids = [f"{prefix}{i:06}" for i in range(n)]
    pipe = r.pipeline(transaction=False)
    for job_id in ids:
        pipe.hset(K.job(job_id), mapping={"state": state, "task": "x:y", "finished_at": at})
        if state == "completed":
            pipe.zadd(K.completed, {job_id: at + 30 * DAY_MS})
        elif state == "failed":
            pipe.zadd(K.failed, {job_id: at})
    pipe.sadd("tarefa:queues", "default")
    pipe.execute()
    return ids


def exists(r, ids) -> int:
    pipe = r.pipeline(transaction=False)
    for job_id in ids:
        pipe.exists(K.job(job_id))
    return sum(pipe.execute())


@pytest.mark.parametrize("state", ["completed", "failed", "cancelled"])
def test_only_jobs_of_that_state_older_than_the_age_go(app, r, state):
    old = seed(r, state, 5, 8 * DAY_MS, "old")
    young = seed(r, state, 3, 6 * DAY_MS, "young")
    other_states = [s for s in ("completed", "failed", "cancelled") if s != state]
    others = {s: seed(r, s, 2, 8 * DAY_MS, f"other-{s}-") for s in other_states}
    live = add.with_options(delay=600).enqueue(1, 1)  # scheduled: never touched
    assert manage.clean(app, "default", state, "7d") == 5
    assert exists(r, old) == 0 and exists(r, young) == 3
    assert all(exists(r, ids) == 2 for ids in others.values())
    assert live.info().state.value == "scheduled"
    counts = app.queue("default").counts()
    if state != "cancelled":
        assert counts[state] == 3  # their index entries went too
    assert manage.clean(app, "default", state, 0) == 3  # 0: every one


def test_jobs_a_worker_ended_are_cleaned_with_their_index_entries(app, r, run_worker):
    done = add.enqueue_many([(i, 1) for i in range(20)])
    failed = always_fails.with_options(retries=0).enqueue("x")
    cancelled = add.with_options(delay=600).enqueue(1, 1)
    cancelled.cancel()
    run_worker()
    assert manage.clean(app, "default", "completed", "1h") == 0  # they ended just now
    assert manage.clean(app, "default", "completed", "0s") == 20
    assert manage.clean(app, "default", "failed", 0) == 1
    assert manage.clean(app, "default", "cancelled", 0) == 1
    assert not any(r.exists(K.job(j.id)) for j in [*done, failed, cancelled])
    assert r.zcard(K.completed) == 0 and r.zcard(K.failed) == 0


@pytest.mark.parametrize("state", ["completed", "failed", "cancelled"])
def test_more_jobs_than_one_batch_are_all_cleaned(app, r, state):
    """Each script call takes one batch; manage.clean calls until done, old
    and young jobs interleaved so the batches step over the young ones."""
    old = seed(r, state, CLEAN_BATCH + 500, 2 * DAY_MS, "a")
    young = seed(r, state, CLEAN_BATCH + 100, DAY_MS // 2, "b")
    assert manage.clean(app, "default", state, "1d") == len(old)
    assert exists(r, old) == 0 and exists(r, young) == len(young)


def test_a_batch_is_bounded(app, r):
    seed(r, "failed", CLEAN_BATCH + 10, DAY_MS, "f")
    deleted, cursor = app.store.clean_batch("default", "failed", 0, "0")
    assert (deleted, cursor) == (CLEAN_BATCH, "0")  # one batch, and more to come
    assert app.store.clean_batch("default", "failed", 0, cursor) == (10, "")


def test_a_record_without_an_end_time_is_left_alone(app, r):
    seed(r, "cancelled", 1, DAY_MS, "c")
    r.hdel(K.job("c000000"), "finished_at")
    assert manage.clean(app, "default", "cancelled", 0) == 0
    assert r.exists(K.job("c000000"))


@pytest.mark.parametrize(
    ("state", "older_than", "message"),
    [
        ("queued", "7d", "state must be one of completed, failed, cancelled, not 'queued'"),
        ("failed", "-1", "older_than must be seconds or a duration"),
        ("failed", -1, "older_than must be 0 or more seconds"),
        ("failed", "7 weeks", "older_than must be seconds or a duration"),
        ("failed", None, "older_than must be seconds or a duration .* not NoneType"),
        ("failed", True, "older_than must be seconds or a duration .* not bool"),
    ],
)
def test_bad_states_and_ages_are_refused_before_anything_is_deleted(app, r, state, older_than,
                                                                    message):  # fmt: skip
    seed(r, "failed", 2, DAY_MS, "f")
    with pytest.raises(ValueError, match=message):
        manage.clean(app, "default", state, older_than)
    assert r.zcard(K.failed) == 2


def test_an_unknown_queue_is_not_found(app, r):
    with pytest.raises(manage.NotFound, match="no queue 'nope'"):
        manage.clean(app, "nope", "failed", 0)
