"""A worker keeps the dead-letter set within its queue's bounds
(``keep_failed``, ``failed_ttl``; by default 10,000 jobs for 180 days) as its
jobs fail, whichever way they fail."""

from __future__ import annotations

import pytest

from tarefa.store.keys import queue_keys

from ..tasks import always_fails, too_slow

K = queue_keys("default")
DAY_MS = 86_400_000


@pytest.fixture
def settings(app):
    """app.configure_queue for one test: the tests' App is shared."""
    saved = dict(app.queue_settings)
    yield app.configure_queue
    app.queue_settings.clear()
    app.queue_settings.update(saved)


def seed_failed(r, entries: dict[str, int]) -> None:
    """Failed jobs as a worker leaves them: a hash in state failed, and its
    entry in the dead-letter set (score: when it failed, ms)."""
    pipe = r.pipeline(transaction=False)
    for job_id, failed_at in entries.items():
        pipe.hset(K.job(job_id), mapping={"state": "failed", "task": "x:y", "error": "{}"})
        pipe.zadd(K.failed, {job_id: failed_at})
    pipe.execute()


def now_ms(r) -> int:
    seconds, micros = r.time()
    return seconds * 1000 + micros // 1000


def test_by_default_a_failure_keeps_the_newest_10_000(app, r, run_worker):
    now = now_ms(r)
    seed_failed(r, {f"old{n:05}": now - 60_000 + n for n in range(10_000)})
    job = always_fails.with_options(retries=0).enqueue("the 10,001st")
    run_worker()
    assert r.zcard(K.failed) == 10_000
    assert not r.exists(K.job("old00000"))  # the oldest went, hash and all
    assert r.exists(K.job("old00001")) and job.info().state.value == "failed"


def test_by_default_a_failure_drops_jobs_failed_over_180_days_ago(app, r, run_worker):
    now = now_ms(r)
    seed_failed(r, {"181d": now - 181 * DAY_MS, "179d": now - 179 * DAY_MS})
    job = always_fails.with_options(retries=0).enqueue("now")
    run_worker()
    assert [i.decode() for i in r.zrange(K.failed, 0, -1)] == ["179d", job.id]
    assert not r.exists(K.job("181d")) and r.exists(K.job("179d"))


@pytest.mark.parametrize("task", [always_fails, too_slow], ids=["raises", "times-out"])
def test_a_queues_own_bounds_hold_as_its_jobs_fail(app, r, run_worker, settings, task):
    settings("default", keep_failed=5, failed_ttl="1h")
    now = now_ms(r)
    seed_failed(r, {"2h-ago": now - 2 * 3_600_000})
    args = ("boom",) if task is always_fails else ()
    jobs = task.with_options(retries=0).enqueue_many([args] * 12)
    run_worker(concurrency=4)
    kept = {i.decode() for i in r.zrange(K.failed, 0, -1)}
    assert len(kept) == 5 and kept <= {j.id for j in jobs}
    assert not r.exists(K.job("2h-ago"))
    assert sum(1 for j in jobs if r.exists(K.job(j.id))) == 5  # the others' hashes went too
