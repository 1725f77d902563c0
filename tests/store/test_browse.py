"""The operator's reads (store/browse.py) and delete.lua, against a real Redis."""

from __future__ import annotations

import pytest

from tarefa import JobState
from tarefa.store import Store
from tarefa.store.keys import job_ref

from .test_scripts import K, add, fetch, state


@pytest.fixture
def store(r, redis_url):
    s = Store(redis_url)
    yield s
    s.clients.close()


def add_keyed(store, job_id, key):
    store.enqueue("q", job_id, (0, 0, key), ["task", "m:f", "payload", b"[[],{}]"])


def test_queued_ids_page_through_list_priorities_and_lanes(store):
    for i in range(3):
        add(store, f"plain{i}")
    add(store, "urgent", priority=1)
    add_keyed(store, "k1", "acme")
    add_keyed(store, "k2", "acme")
    order = ["plain0", "plain1", "plain2", "urgent", "k1", "k2"]
    assert store.job_ids("q", "queued", 0, 10) == order
    pages = [store.job_ids("q", "queued", offset, 2) for offset in (0, 2, 4)]
    assert sum(pages, []) == order
    assert store.job_ids("q", "queued", 6, 2) == []


def test_ended_jobs_are_listed_newest_first(store):
    for job_id in ("a", "b"):
        add(store, job_id)
        job = fetch(store, want=1).jobs[0]
        fetch(store, want=0, outcomes=[(job.id, job.token, "failed", b"{}", 0)])
    assert store.job_ids("q", "failed", 0, 10) == ["b", "a"]
    infos = store.job_infos("q", ["a", "gone"])
    assert infos[0] is not None and infos[1] is None
    assert (infos[0].id, infos[0].state, infos[0].task) == ("a", JobState.FAILED, "m:f")


def test_oldest_ready_counts_from_when_a_delayed_job_became_ready(store, r):
    add(store, "late", delay_ms=60_000)
    r.zadd(K.scheduled, {"late": 0})  # due: the next fetch promotes it
    add(store, "taken")
    add(store, "now")
    r.hset(K.job("now"), "enqueued_at", 1_000)
    assert fetch(store, want=1).jobs[0].id == "taken"
    assert store.oldest_ready_ms("q") == 1_000
    r.hset(K.job("late"), "enqueued_at", 500)  # it has waited since ready_at
    assert store.oldest_ready_ms("q") == 1_000
    store.delete("q", ["now"])
    assert store.oldest_ready_ms("q") == int(r.hget(K.job("late"), "ready_at"))


def test_delete_removes_every_trace_and_gives_a_key_its_place_back(store, r):
    add_keyed(store, "k1", "acme")
    leased = fetch(store, want=1).jobs[0]
    assert r.hget(K.lane_active, "acme") == b"1"
    add(store, "s", delay_ms=60_000)
    assert store.delete("q", ["k1", "s", "ghost"]) == 2
    assert not r.exists(K.job("k1")) and not r.exists(K.job("s"))
    assert r.zcard(K.active) == 0 and r.zcard(K.scheduled) == 0
    assert r.hget(K.lane_active, "acme") is None
    # The deleted attempt's outcome is discarded, not recreating the job.
    fetch(store, want=0, outcomes=[(leased.id, leased.token, "completed", b"1", 60_000)])
    assert not r.exists(K.job("k1"))


def test_delete_cancels_the_jobs_waiting_for_a_job_that_had_not_ended(store):
    add(store, "parent")
    store.enqueue("q", "child", (0, 0, ""), ["task", "m:f", "payload", b"[[],{}]"], waits=1)
    store.wait_for(job_ref("q", "child"), [job_ref("q", "parent")])
    assert store.delete("q", ["parent"]) == 1
    assert state(store.clients.sync, "child") == "cancelled"
