"""The dead-letter set stays bounded (keep_failed, failed_ttl): trimmed by the
scripts that fail jobs, as they fail them, at the script level against a
real Redis."""

from __future__ import annotations

import asyncio

import pytest

from tarefa.limits import FAILED_TTL, KEEP_FAILED, QueueSettings
from tarefa.store import Store
from tarefa.store.keys import queue_keys
from tarefa.store.workers import dead_letter_args, limit_args

from .reported import reported

K = queue_keys("q")
STEP = 100  # DEAD_LETTER_STEP in includes/dead_letters.lua
DAY_MS = 86_400_000


@pytest.fixture
def store(r, redis_url):
    s = Store(redis_url)
    yield s
    s.clients.close()


def add(store, job_id):
    store.enqueue("q", job_id, (0, 0, ""), ["task", "m:f", "payload", b"[[],{}]"])


def fetch(store, want=1000, outcomes=(), max_stalls=3, **settings):

    async def go():
        return await store.fetch(
            "q", "w1", want=want, lease_ms=10_000, max_stalls=max_stalls,
            settings=QueueSettings.parse(**settings), outcomes=reported(outcomes),
        )  # fmt: skip

    return asyncio.run(go())


def fail_all(store, ids, **settings) -> None:
    """Lease ``ids`` and report them all failed, in one call."""
    for job_id in ids:
        add(store, job_id)
    leased = fetch(store, want=len(ids), **settings).jobs
    assert sorted(j.id for j in leased) == sorted(ids)
    outcomes = [(j.id, j.token, "failed", b'{"type": "E"}', 0) for j in leased]
    fetch(store, want=0, outcomes=outcomes, **settings)


def failed(r) -> list[str]:
    return [i.decode() for i in r.zrange(K.failed, 0, -1)]


def hashes(r) -> int:
    return sum(1 for _ in r.scan_iter(match=K.job_prefix + "*", count=1000))


def test_the_defaults_are_sidekiqs_dead_set_10_000_jobs_for_6_months():
    assert (KEEP_FAILED, FAILED_TTL) == (10_000, 180 * 86400)
    settings = QueueSettings()
    assert (settings.keep_failed, settings.failed_ttl) == (10_000, 180 * 86400)
    assert dead_letter_args(settings) == (10_000, 180 * DAY_MS)
    assert limit_args(settings)[-2:] == (10_000, 180 * DAY_MS)  # what the workers send


def test_each_failure_beyond_keep_failed_deletes_the_oldest_and_its_hash(store, r):
    for n in range(5):
        fail_all(store, [f"j{n}"], keep_failed=3)
        assert len(failed(r)) == min(n + 1, 3)
    assert failed(r) == ["j2", "j3", "j4"]  # oldest first out
    assert hashes(r) == 3
    assert not r.exists(K.job("j0")) and not r.exists(K.job("j1"))
    assert r.hget(K.job("j4"), "state") == b"failed"


def test_a_burst_of_failures_in_one_call_larger_than_a_step(store, r):
    ids = [f"j{n:03}" for n in range(2 * STEP + 50)]
    fail_all(store, ids, keep_failed=10)
    assert len(failed(r)) == 10 and hashes(r) == 10
    # One millisecond may hold them all: ties go by id, so the last ten stay.
    kept = set(failed(r))
    assert kept <= set(ids) and all(r.hget(K.job(i), "state") == b"failed" for i in kept)


def test_failed_jobs_older_than_failed_ttl_go_when_a_job_fails(store, r):
    fail_all(store, ["old", "young"], keep_failed=None, failed_ttl=None)
    now = int(r.zscore(K.failed, "young"))
    r.zadd(K.failed, {"old": now - 2 * DAY_MS - 1, "young": now - DAY_MS // 24})
    fail_all(store, ["new"], keep_failed=None, failed_ttl="2d")
    assert failed(r) == ["young", "new"]
    assert not r.exists(K.job("old")) and r.exists(K.job("young"))


def test_far_over_its_bounds_the_set_shrinks_a_step_per_failure(store, r):
    """Bounds lowered (or many jobs aged out at once): one call deletes at
    most a step, so no call holds Redis long; each failure takes it closer."""
    fail_all(store, [f"a{n:03}" for n in range(2 * STEP + 50)], keep_failed=None)
    assert len(failed(r)) == 250
    sizes = []
    for n in range(3):
        fail_all(store, [f"z{n}"], keep_failed=10)
        sizes.append(len(failed(r)))
    assert sizes == [251 - STEP, 152 - STEP, 10]
    assert hashes(r) == 10


def test_an_index_entry_of_a_job_that_is_not_failed_is_dropped_and_the_job_kept(store, r):
    # Scheduled, yet an entry in the failed set names it.
    store.enqueue("q", "elsewhere", (600_000, 0, ""), ["task", "m:f", "payload", b"[[],{}]"])
    r.zadd(K.failed, {"elsewhere": 1})
    fail_all(store, ["f1", "f2"], keep_failed=2)
    assert failed(r) == ["f1", "f2"]
    assert r.hget(K.job("elsewhere"), "state") == b"scheduled"


def test_without_bounds_nothing_is_trimmed(store, r):
    fail_all(store, [f"j{n}" for n in range(20)], keep_failed=None, failed_ttl=None)
    r.zadd(K.failed, {"j0": 1})  # failed in 1970
    fail_all(store, ["last"], keep_failed=None, failed_ttl=None)
    assert len(failed(r)) == 21


def test_jobs_failed_by_stalls_trim_the_set_too(store, r):
    fail_all(store, ["f1", "f2"], keep_failed=None)
    add(store, "stalls")
    fetch(store, want=1)
    r.zadd(K.active, {"stalls": 0})  # its lease ran out long ago
    settings = QueueSettings.parse(keep_failed=2)
    asyncio.run(store.recover("q", max_stalls=0, settings=settings))
    assert failed(r) == ["f2", "stalls"]
    assert not r.exists(K.job("f1"))
    # and by the recovery a fetch makes as it leases
    add(store, "stalls2")
    fetch(store, want=1)
    r.zadd(K.active, {"stalls2": 0})
    fetch(store, want=1, max_stalls=0, keep_failed=2)
    assert failed(r) == ["stalls", "stalls2"]
    assert not r.exists(K.job("f2"))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"keep_failed": -1}, "keep_failed must be an int >= 1 or None, not -1"),
        ({"keep_failed": 0}, "keep_failed must be an int >= 1 or None, not 0"),
        ({"keep_failed": "100"}, "keep_failed must be an int >= 1 or None, not '100'"),
        ({"keep_failed": 2.5}, "keep_failed must be an int >= 1 or None, not 2.5"),
        ({"keep_failed": True}, "keep_failed must be an int >= 1 or None, not True"),
        ({"failed_ttl": -5}, "failed_ttl must be 0 or more seconds, not -5"),
        ({"failed_ttl": 0}, "failed_ttl must be at least 1 ms, or None, not 0"),
        ({"failed_ttl": "soon"}, "failed_ttl must be seconds or a duration such as '30s'"),
        ({"failed_ttl": "7w"}, "failed_ttl must be seconds or a duration"),
        ({"failed_ttl": [30]}, "failed_ttl must be seconds or a duration .* not list"),
        ({"failed_ttl": True}, "failed_ttl must be seconds or a duration .* not bool"),
        ({"failed_ttl": float("nan")}, "failed_ttl must be 0 or more seconds, not nan"),
    ],
)
def test_configure_queue_refuses_bad_bounds_clearly(app, settings, message):
    before = dict(app.queue_settings)
    with pytest.raises(ValueError, match=message):
        app.configure_queue("bounded", **settings)
    assert app.queue_settings == before  # nothing half set


def test_configure_queue_takes_counts_seconds_durations_and_none(app):
    saved = dict(app.queue_settings)
    try:
        app.configure_queue("bounded", keep_failed=500, failed_ttl="30d")
        assert dead_letter_args(app.settings("bounded")) == (500, 30 * DAY_MS)
        app.configure_queue("bounded", failed_ttl=3600.5)
        assert dead_letter_args(app.settings("bounded")) == (10_000, 3_600_500)
        app.configure_queue("bounded", keep_failed=None, failed_ttl=None)
        assert dead_letter_args(app.settings("bounded")) == (0, 0)  # no bound at all
        assert dead_letter_args(app.settings("elsewhere")) == (10_000, 180 * DAY_MS)
    finally:
        app.queue_settings.clear()
        app.queue_settings.update(saved)
