"""Keys (lanes), limits, de-duplication windows and retention, at the script
level against a real Redis: what one fetch leases, and what it leaves waiting."""

from __future__ import annotations

import asyncio

import pytest

from tarefa.limits import QueueSettings
from tarefa.records import Added, Enqueued
from tarefa.store import Store
from tarefa.store.keys import queue_keys

from .reported import reported

K = queue_keys("q")
FIELDS = ["task", "m:f", "payload", b"[[],{}]"]


@pytest.fixture
def store(r, redis_url):
    s = Store(redis_url)
    yield s
    s.clients.close()


def add(store, job_id, key="", delay_ms=0, priority=0, window=("", 0, ""), payload=b"[[],{}]"):
    fields = ["task", "m:f", "payload", payload]
    return store.enqueue("q", job_id, (delay_ms, priority, key), fields, window)


def fetch(store, want=10, outcomes=(), worker="w1", **settings):

    async def go():
        return await store.fetch(
            "q", worker, want=want, lease_ms=10_000, max_stalls=3,
            settings=QueueSettings.parse(**settings), outcomes=reported(outcomes),
        )  # fmt: skip

    return asyncio.run(go())


def ids(fetched) -> list[str]:
    return [j.id for j in fetched.jobs]


def done(job, outcome="completed", value=b"1", ms=60_000):
    return (job.id, job.token, outcome, value, ms)


# -- lanes: keys take turns -------------------------------------------------------------


def test_keys_take_turns_so_one_busy_key_does_not_starve_the_others(store, r):
    for i in range(4):
        add(store, f"big{i}", key="big")
    add(store, "small0", key="small")
    add(store, "plain")
    # Plain jobs first, then one job per key per turn, in the keys' arrival order.
    assert ids(fetch(store, want=4)) == ["plain", "big0", "small0", "big1"]
    assert ids(fetch(store)) == ["big2", "big3"]
    assert r.zcard(K.lanes) == 0 and not r.exists(K.lane("big"))


def test_a_key_at_its_concurrency_limit_holds_back_only_its_own_jobs(store, r):
    for i in range(3):
        add(store, f"a{i}", key="a")
    add(store, "b0", key="b")
    got = fetch(store, key_concurrency=2)
    assert ids(got) == ["a0", "b0", "a1"]  # a2 waits: a has 2 running
    assert ids(fetch(store, key_concurrency=2)) == []
    assert r.hget(K.lane_active, "a") == b"2"
    # One of a's jobs ends: a gets its turn again, and its next job runs.
    a0 = got.jobs[0]
    assert ids(fetch(store, outcomes=[done(a0)], key_concurrency=2)) == ["a2"]


@pytest.mark.parametrize("outcome", ["completed", "retry", "failed"])
def test_every_end_of_a_keyed_job_frees_its_place(store, r, outcome):
    add(store, "a0", key="a")
    add(store, "a1", key="a")
    a0 = fetch(store, key_concurrency=1).jobs[0]
    assert ids(fetch(store, outcomes=[done(a0, outcome, b"{}", 0)], key_concurrency=1)) == ["a1"]


def test_cancel_recover_and_hand_back_free_a_keys_place(store, r):
    for i in range(4):
        add(store, f"a{i}", key="a")
    a0 = fetch(store, key_concurrency=1).jobs[0]
    assert store.cancel("q", "a0", 60_000) is True
    a1 = fetch(store, key_concurrency=1).jobs[0]
    assert a1.id == "a1"
    asyncio.run(store.requeue("q", [(a1.id, a1.token)]))  # handed back: first in its lane
    a1 = fetch(store, key_concurrency=1).jobs[0]
    assert a1.id == "a1"
    r.zadd(K.active, {"a1": 0})  # its worker died
    asyncio.run(store.recover("q", max_stalls=3))
    assert ids(fetch(store, want=1, key_concurrency=1)) == ["a1"]
    assert a0.id == "a0" and r.hget(K.lane_active, "a") == b"1"


def test_a_queued_keyed_job_can_be_cancelled(store, r):
    add(store, "a0", key="a")
    add(store, "a1", key="a")
    assert store.cancel("q", "a0", 60_000) is True
    assert ids(fetch(store)) == ["a1"]


def test_a_key_rate_limit_holds_the_key_back_until_its_window_passes(store, r):
    for i in range(3):
        add(store, f"a{i}", key="a")
    add(store, "b0", key="b")
    got = fetch(store, key_rate_limit="2/s")
    assert ids(got) == ["a0", "b0", "a1"]
    got = fetch(store, key_rate_limit="2/s")
    assert ids(got) == [] and 900 < got.next_due_ms <= 1000  # a may start again in ~1 s
    assert r.zscore(K.lanes_waiting, "a") is not None
    # When its time comes, the key is back in turn.
    r.zadd(K.lanes_waiting, {"a": 0})
    r.delete(K.lane_rate_prefix + "a")
    assert ids(fetch(store, key_rate_limit="2/s")) == ["a2"]


# -- the queue's rate limit ---------------------------------------------------------------


def test_the_queue_rate_limit_caps_starts_and_reports_when_to_come_back(store, r):
    for i in range(5):
        add(store, f"j{i}")
    assert len(fetch(store, rate_limit="3/s").jobs) == 3
    r.delete(K.marker)
    got = fetch(store, rate_limit="3/s")
    assert got.jobs == [] and 900 < got.next_due_ms <= 1000
    assert r.zcard(K.marker) == 0  # held back by the limit: no worker is woken for it
    r.delete(K.rate)  # the window passed
    assert len(fetch(store, rate_limit="3/s").jobs) == 2


def test_rate_limits_count_starts_of_every_worker(store, r):
    for i in range(4):
        add(store, f"j{i}")
    assert len(fetch(store, worker="w1", rate_limit="2/m").jobs) == 2
    assert fetch(store, worker="w2", rate_limit="2/m").jobs == []


def test_limits_are_checked(store):
    for bad in ("fast", "10/", "0/s", "10/week", "-1/s", (0, 1), (1, 0), 5):
        with pytest.raises(ValueError, match="rate_limit"):
            QueueSettings.parse(rate_limit=bad)
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="key_concurrency"):
            QueueSettings.parse(key_concurrency=bad)
    assert QueueSettings.parse(rate_limit="100/m").rate_limit == (100, 60_000)
    assert QueueSettings.parse(rate_limit="5/2s").rate_limit == (5, 2000)
    assert QueueSettings.parse(rate_limit="1000/hour").rate_limit == (1000, 3_600_000)
    assert QueueSettings.parse(rate_limit=(10, 0.5)).rate_limit == (10, 500)


# -- retention -------------------------------------------------------------------------------


def test_keep_completed_keeps_only_the_newest_results(store, r):
    for i in range(5):
        add(store, f"j{i}")
    jobs = fetch(store).jobs
    outcomes = [done(job, ms=60_000 + i) for i, job in enumerate(jobs)]
    fetch(store, want=0, outcomes=outcomes, keep_completed=2)
    assert r.zrange(K.completed, 0, -1) == [b"j3", b"j4"]
    assert not r.exists(K.job("j0")) and r.exists(K.job("j4"))


# -- throttle and debounce --------------------------------------------------------------------


def test_throttle_keeps_the_first_job_of_its_window(store, r):
    window = ("throttle", 60_000, "m:f:acct")
    assert add(store, "first", window=window) == Enqueued(Added.CREATED, "first")
    assert add(store, "second", window=window) == Enqueued(Added.KEPT, "first", "queued")
    assert add(store, "other", window=("throttle", 60_000, "m:f:other")) == Enqueued(
        Added.CREATED, "other"
    )
    assert not r.exists(K.job("second"))
    r.delete(K.dedupe_prefix + "m:f:acct")  # the window passed
    assert add(store, "third", window=window) == Enqueued(Added.CREATED, "third")


def test_debounce_runs_only_the_last_of_a_burst_after_a_quiet_window(store, r):
    window = ("debounce", 60_000, "m:f:acct")
    assert add(store, "first", window=window, payload=b"[[1],{}]").added is Added.CREATED
    due = r.zscore(K.scheduled, "first")
    kept = add(store, "second", window=window, payload=b"[[2],{}]")
    assert kept == Enqueued(Added.KEPT, "first", "scheduled")
    assert r.hget(K.job("first"), "payload") == b"[[2],{}]"  # the last call's arguments
    assert r.zscore(K.scheduled, "first") >= due  # and the window starts again
    assert not r.exists(K.job("second"))
    # Once the kept job has started, a new call starts a new job.
    r.zadd(K.scheduled, {"first": 0})
    assert ids(fetch(store)) == ["first"]
    assert add(store, "third", window=window) == Enqueued(Added.CREATED, "third")


# -- priorities and attempts ------------------------------------------------------------------


def test_a_prioritized_job_handed_back_goes_first_in_its_priority(store, r):
    add(store, "p1", priority=1)
    add(store, "p2a", priority=2)
    add(store, "p2b", priority=2)
    got = fetch(store, want=2)
    p2a = got.jobs[1]
    asyncio.run(store.requeue("q", [(p2a.id, p2a.token)]))
    assert r.llen(K.ready) == 0  # not in the plain list, ahead of every priority
    add(store, "p1late", priority=1)
    assert ids(fetch(store)) == ["p1late", "p2a", "p2b"]


def test_a_new_attempt_starts_with_no_progress(store, r):
    add(store, "a")
    a = fetch(store).jobs[0]
    assert store.progress("q", "a", a.token, b'{"value": 50}')
    fetch(store, want=0, outcomes=[done(a, "retry", b"{}", 0)])
    assert ids(fetch(store)) == ["a"]
    assert r.hget(K.job("a"), "progress") is None
