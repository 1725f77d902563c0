"""Every Lua script, called directly against a real Redis."""

from __future__ import annotations

import asyncio

import pytest

from tarefa import JobNotFound
from tarefa.errors import WrongState
from tarefa.limits import DEFAULT_SETTINGS
from tarefa.records import Added, Enqueued, LeaseLoss, LostLease, RecoveredJob, Recovery
from tarefa.store import Store
from tarefa.store.keys import job_ref, queue_keys
from tarefa.store.scripts import ScriptError, assemble
from tarefa.store.workers import limit_args

from .reported import reported

K = queue_keys("q")


@pytest.fixture
def store(r, redis_url):
    s = Store(redis_url)
    yield s
    s.clients.close()


def fetch(store: Store, want=10, outcomes=(), lease_ms=10_000, max_stalls=3, worker="w1"):
    async def go():
        return await store.fetch(
            "q",
            worker,
            want=want,
            lease_ms=lease_ms,
            max_stalls=max_stalls,
            outcomes=reported(outcomes),
        )

    return asyncio.run(go())


def run(coro):
    return asyncio.run(coro)


def state(r, job_id) -> str:
    return r.hget(K.job(job_id), "state").decode()


def add(store, job_id, delay_ms=0, task="m:f", priority=0):
    fields = ["task", task, "payload", b"[[],{}]"]
    return store.enqueue("q", job_id, (delay_ms, priority, ""), fields)


# -- the loader --------------------------------------------------------------------


def test_includes_are_resolved_once_and_missing_or_circular_ones_fail():
    files = {
        "a.lua": '--- @include "inc/x.lua"\n--- @include "inc/y.lua"\nreturn 1',
        "inc/x.lua": "local x = 1",
        "inc/y.lua": '--- @include "inc/x.lua"\nlocal y = 2',
        "loop.lua": '--- @include "inc/loop.lua"',
        "inc/loop.lua": '--- @include "loop.lua"',
        "bad.lua": '--- @include "inc/nope.lua"',
    }

    def read(path):
        if path not in files:
            raise ScriptError(f"Lua file not found: {path}")
        return files[path]

    assert assemble("a", read).count("local x = 1") == 1
    with pytest.raises(ScriptError, match="circular include"):
        assemble("loop", read)
    with pytest.raises(ScriptError, match="not found: inc/nope.lua"):
        assemble("bad", read)


def test_every_shipped_script_assembles_and_loads(store):
    for name in vars(store.scripts):
        script = getattr(store.scripts, name)
        assert "@include" not in script.source
        assert store.clients.sync.script_load(script.source) == script.sha


def test_a_script_gets_in_keys_only_the_queue_keys_it_reads(store):
    heartbeat = store.scripts.heartbeat
    assert heartbeat.key_names == ("job_prefix", "active")  # in QueueKeys order
    assert heartbeat.keys(K) == (K.job_prefix, K.active)
    assert "  job_prefix = KEYS[1],\n  active = KEYS[2],\n}" in heartbeat.source
    files = {
        "a.lua": '--- @include "includes/queue_keys.lua"\nreturn keys.redy',
        "b.lua": "return keys.ready",  # forgot the include: fails at load, not when called
    }
    with pytest.raises(ScriptError, match="no such queue key: keys.redy"):
        assemble("a", files.__getitem__)
    with pytest.raises(ScriptError, match="reads keys.ready but does not include"):
        assemble("b", files.__getitem__)


def test_scripts_are_reloaded_after_the_server_forgets_them(store, r):
    add(store, "a")
    r.script_flush()
    assert add(store, "b") == Enqueued(Added.CREATED, "b")
    assert r.llen(K.ready) == 2


# -- enqueue ------------------------------------------------------------------------


def test_enqueue_adds_a_queued_job_and_wakes_workers(store, r):
    assert add(store, "a") == Enqueued(Added.CREATED, "a")
    assert state(r, "a") == "queued"
    assert r.lrange(K.ready, 0, -1) == [b"a"]
    assert r.zrange(K.marker, 0, -1) == [b"m"]
    assert int(r.hget(K.job("a"), "enqueued_at")) > 0


def test_enqueue_wakes_workers_only_when_the_ready_list_was_empty(store, r):
    add(store, "a")
    r.delete(K.marker)  # a worker took the wake-up and is on its way to fetch
    add(store, "b")
    assert r.zcard(K.marker) == 0  # that worker will see b too; no second wake-up
    r.delete(K.ready)
    add(store, "c")
    assert r.zrange(K.marker, 0, -1) == [b"m"]


def test_enqueue_of_an_existing_id_adds_nothing_and_returns_its_state(store, r):
    assert add(store, "a") == Enqueued(Added.CREATED, "a")
    assert add(store, "a", task="other:task") == Enqueued(Added.EXISTING, "a", "queued")
    assert r.llen(K.ready) == 1
    assert r.hget(K.job("a"), "task") == b"m:f"


def test_enqueue_with_a_delay_schedules_it(store, r):
    assert add(store, "a", delay_ms=60_000) == Enqueued(Added.CREATED, "a")
    assert state(r, "a") == "scheduled"
    assert r.llen(K.ready) == 0
    due = r.zscore(K.scheduled, "a")
    assert due > int(r.hget(K.job("a"), "enqueued_at"))


def test_enqueue_many_adds_all_and_reports_duplicates(store, r):
    add(store, "b")
    jobs = [(i, ["task", "m:f", "payload", b"[[],{}]"]) for i in ("a", "b", "c")]
    assert store.enqueue_many("q", (0, 0, ""), jobs) == [
        Enqueued(Added.CREATED, "a"),
        Enqueued(Added.EXISTING, "b", "queued"),
        Enqueued(Added.CREATED, "c"),
    ]
    assert r.lrange(K.ready, 0, -1) == [b"c", b"a", b"b"]  # LPUSH in, RPOP out: FIFO


# -- fetch ------------------------------------------------------------------------


def test_fetch_leases_in_fifo_order_with_a_fencing_token(store, r):
    for i in "abc":
        add(store, i)
    got = fetch(store, want=2)
    assert [j.id for j in got.jobs] == ["a", "b"]
    job = got.jobs[0]
    assert (job.task, job.payload, job.attempts) == ("m:f", b"[[],{}]", 1)
    # Tokens are drawn at random (store/tokens.py), consecutive within a call,
    # whole numbers below 10^14, as the job's hash holds them.
    assert job.token.isdigit() and len(job.token) == 13
    assert int(got.jobs[1].token) == int(job.token) + 1
    assert r.hget(K.job("a"), "lease") == job.token
    assert state(r, "a") == "active"
    assert r.hget(K.job("a"), "worker") == b"w1"
    assert r.zcard(K.active) == 2 and got.active == 2
    assert r.lrange(K.ready, 0, -1) == [b"c"]


def test_jobs_without_priority_go_first_then_smaller_priority_then_arrival(store, r):
    add(store, "p5", priority=5)
    add(store, "n1")
    add(store, "p1a", priority=1)
    add(store, "p1b", priority=1)
    add(store, "n2")
    assert [j.id for j in fetch(store, want=10).jobs] == ["n1", "n2", "p1a", "p1b", "p5"]
    assert r.hget(K.job("p5"), "priority") == b"5"


def test_a_due_or_retried_job_keeps_its_priority(store, r):
    add(store, "late", delay_ms=60_000, priority=2)
    add(store, "other", priority=3)
    r.zadd(K.scheduled, {"late": 0})  # due now
    assert [j.id for j in fetch(store, want=10).jobs] == ["late", "other"]
    assert r.zcard(K.prioritized) == 0


def test_a_prioritized_job_wakes_idle_workers(store, r):
    add(store, "p", priority=1)
    assert r.zrange(K.marker, 0, -1) == [b"m"]


def test_fetch_records_outcomes_and_leases_in_one_call(store, r):
    add(store, "a")
    add(store, "b")
    a = fetch(store, want=1).jobs[0]
    outcome = (a.id, a.token, "completed", b"42", 60_000)
    got = fetch(store, want=1, outcomes=[outcome])
    assert [j.id for j in got.jobs] == ["b"]
    assert state(r, "a") == "completed"
    assert r.hget(K.job("a"), "result") == b"42"
    assert 0 < r.pttl(K.job("a")) <= 60_000
    assert r.zscore(K.completed, "a") is not None
    assert r.zscore(K.active, "a") is None


def test_completed_with_no_retention_deletes_the_job(store, r):
    add(store, "a")
    a = fetch(store).jobs[0]
    fetch(store, want=0, outcomes=[(a.id, a.token, "completed", b"1", 0)])
    assert not r.exists(K.job("a"))
    assert r.zcard(K.completed) == 0


def test_a_completed_job_keeps_its_state_times_and_result_but_not_its_inputs(store, r):
    """Its record lasts as long as its result (an hour by default): its
    payload, options, parents and their results, and an earlier attempt's
    error are dropped as it completes, so a drained Redis holds little."""
    store.enqueue("q", "p", (0, 0, ""), ["task", "m:f", "payload", b"[[],{}]"])
    spec = b'{"takes_results": true, "parents": ["q|p"]}'
    fields = ["task", "m:g", "payload", b'[["x"],{}]', "options", b'{"timeout": 5}']
    fields += ["parents", spec]
    store.enqueue("q", "g", (0, 0, ""), fields, waits=1)
    store.wait_for(job_ref("q", "g"), [job_ref("q", "p")])
    p = fetch(store, want=1).jobs[0]
    fetch(store, want=0, outcomes=[(p.id, p.token, "completed", b'"from p"', 60_000)])
    store.resolve(job_ref("q", "p"), "completed", b'"from p"', [job_ref("q", "g")])
    g = fetch(store, want=1).jobs[0]
    assert g.parent_results == [b'"from p"']
    fetch(store, want=0, outcomes=[(g.id, g.token, "retry", b'{"type": "E"}', 0)])
    g = fetch(store, want=1).jobs[0]  # its second attempt
    assert store.progress("q", "g", g.token, b'{"value": 1}')
    fetch(store, want=0, outcomes=[(g.id, g.token, "completed", b"7", -1)])
    kept = {k.decode(): v for k, v in r.hgetall(K.job("g")).items()}
    assert set(kept) == {"state", "task", "enqueued_at", "ready_at", "started_at", "finished_at",
                         "attempts", "worker", "lease", "progress", "result"}  # fmt: skip
    assert (kept["state"], kept["result"], kept["attempts"]) == (b"completed", b"7", b"2")
    assert set(r.hkeys(K.job("p"))) == {b"state", b"task", b"enqueued_at", b"started_at",
                                        b"finished_at", b"attempts", b"worker", b"lease",
                                        b"result"}  # fmt: skip


def test_a_completed_job_with_a_long_payload_gets_a_compact_record(store, r):
    """A hash that held a long value keeps Redis's roomy encoding after it is
    deleted (about three times the size): the record is written afresh."""
    store.enqueue("q", "a", (0, 0, ""), ["task", "m:f", "payload", b'[["%s"],{}]' % (b"x" * 500)])
    assert r.object("encoding", K.job("a")) == b"hashtable"
    a = fetch(store).jobs[0]
    fetch(store, want=0, outcomes=[(a.id, a.token, "completed", b"null", 60_000)])
    assert r.object("encoding", K.job("a")) in (b"listpack", b"ziplist")  # Redis 7, 6.2
    assert r.hget(K.job("a"), "payload") is None and r.hget(K.job("a"), "result") == b"null"
    assert 0 < r.pttl(K.job("a")) <= 60_000


def test_a_failed_job_keeps_everything_it_needs_to_run_again(store, r):
    fields = ["task", "m:f", "payload", b'[["x"],{}]', "options", b'{"timeout": 5}']
    store.enqueue("q", "a", (0, 0, ""), fields)
    a = fetch(store).jobs[0]
    fetch(store, want=0, outcomes=[(a.id, a.token, "failed", b'{"type":"E"}', 0)])
    job = r.hgetall(K.job("a"))
    assert (job[b"payload"], job[b"options"], job[b"error"]) == (
        b'[["x"],{}]',
        b'{"timeout": 5}',
        b'{"type":"E"}',
    )
    store.retry("q", "a")
    again = fetch(store).jobs[0]
    assert (again.payload, again.options) == (b'[["x"],{}]', b'{"timeout": 5}')


def test_retry_outcome_schedules_and_promotion_requeues_when_due(store, r):
    add(store, "a")
    a = fetch(store).jobs[0]
    got = fetch(store, want=0, outcomes=[(a.id, a.token, "retry", b'{"type":"E"}', 60_000)])
    assert state(r, "a") == "scheduled"
    assert r.hget(K.job("a"), "error") == b'{"type":"E"}'
    assert 59_000 < got.next_due_ms <= 60_000  # the worker sleeps until then
    got = fetch(store, want=1)
    assert got.jobs == [] and 59_000 < got.next_due_ms <= 60_000
    r.zadd(K.scheduled, {"a": 0})  # make it due
    got = fetch(store, want=1)
    assert [j.id for j in got.jobs] == ["a"] and got.jobs[0].attempts == 2


def test_failed_outcome_goes_to_the_dead_letter_set(store, r):
    add(store, "a")
    a = fetch(store).jobs[0]
    fetch(store, want=0, outcomes=[(a.id, a.token, "failed", b'{"type":"E"}', 0)])
    assert state(r, "a") == "failed"
    assert r.zscore(K.failed, "a") is not None
    assert r.ttl(K.job("a")) == -1  # kept until deleted


def test_an_outcome_with_a_stale_token_is_discarded(store, r):
    add(store, "a")
    first = fetch(store, lease_ms=1).jobs[0]
    r.zadd(K.active, {"a": 0})  # the lease expired...
    run(store.recover("q", max_stalls=3))  # ...and was recovered
    second = fetch(store, worker="w2").jobs[0]
    assert second.token != first.token
    got = fetch(store, want=0, outcomes=[(first.id, first.token, "completed", b"old", 0)])
    assert got.discarded == [("a", LeaseLoss.TAKEN_OVER)]
    assert state(r, "a") == "active" and r.hget(K.job("a"), "worker") == b"w2"
    got = fetch(store, want=0, outcomes=[(second.id, second.token, "completed", b"new", 1000)])
    assert got.stale == [] and r.hget(K.job("a"), "result") == b"new"


def test_a_new_attempt_never_gets_the_token_of_the_last_one_whatever_the_draw(store, r):
    add(store, "a")
    args = ["w1", 10_000, 1, 3, *limit_args(DEFAULT_SETTINGS)]  # worker, lease, want, stalls
    first = store.scripts.fetch(r, K, [*args, 5_000_000_000_000, 0])
    assert first[3][4] == b"5000000000000"
    r.zadd(K.active, {"a": 0})  # the lease expired...
    run(store.recover("q", max_stalls=3))  # ...and was recovered
    second = store.scripts.fetch(r, K, [*args, 5_000_000_000_000, 0])  # the same draw
    assert second[3][4] == b"5000000000001"
    assert r.hget(K.job("a"), "lease") == b"5000000000001"


@pytest.mark.parametrize("removal", ["delete", "purge"])
def test_a_job_removed_while_it_runs_and_enqueued_again_gets_a_lease_of_its_own(store, r, removal):
    add(store, "a")
    old = fetch(store).jobs[0]
    if removal == "delete":
        store.delete("q", ["a"])
    else:
        store.purge("q")
    add(store, "a")  # the same id, e.g. an idempotency key, while the old attempt still runs
    new = fetch(store, worker="w2").jobs[0]
    assert new.token != old.token
    # the old attempt stops; the new one goes on, even in the same worker
    leases = [("a", old.token), ("a", new.token)]
    assert run(store.heartbeat("q", 60_000, leases)) == [
        LostLease("a", old.token, LeaseLoss.TAKEN_OVER)  # another attempt holds it
    ]
    got = fetch(store, want=0, outcomes=[(old.id, old.token, "completed", b"old", 1000)])
    assert got.stale == ["a"]
    assert state(r, "a") == "active" and r.hget(K.job("a"), "worker") == b"w2"


def test_a_paused_queue_leases_nothing_but_still_records_outcomes(store, r):
    add(store, "a")
    add(store, "b")
    a = fetch(store, want=1).jobs[0]
    store.pause("q")
    got = fetch(store, want=5, outcomes=[(a.id, a.token, "completed", b"1", 1000)])
    assert got.jobs == [] and r.hget(K.job("a"), "state") == b"completed"
    assert store.resume("q") is True
    assert r.zrange(K.marker, 0, -1) == [b"m"]  # idle workers are woken
    assert [j.id for j in fetch(store, want=5).jobs] == ["b"]


def test_a_paused_queue_with_work_does_not_keep_waking_workers(store, r):
    add(store, "a")
    add(store, "later", delay_ms=60_000)
    r.zadd(K.scheduled, {"later": 0})  # due now
    store.pause("q")
    r.delete(K.marker)
    got = fetch(store, want=5)
    assert got.jobs == [] and got.next_due_ms == -1  # nothing to wait for here
    assert r.zcard(K.marker) == 0  # no wake-up: idle workers stay asleep


def test_a_job_whose_hash_is_gone_is_counted_lost_and_named_not_skipped(store, r):
    """Its id in the ready list, but its hash evicted (maxmemory-policy
    allkeys-lru) or deleted by hand: the fetch leases the next job, and says
    which was lost, and counts it."""
    add(store, "a")
    add(store, "b")
    r.delete(K.job("a"))
    got = fetch(store)
    assert [j.id for j in got.jobs] == ["b"] and got.lost == ["a"]
    assert r.hget(K.stats, "lost|") == b"1"


def test_jobs_gone_from_every_index_are_counted_lost(store, r):
    """Wherever the id is: ready, a priority, a key's lane, scheduled and due,
    active with its lease run out (fetch and recover), waiting for a parent."""
    add(store, "running")
    add(store, "running2")
    assert len(fetch(store, want=2, lease_ms=1).jobs) == 2  # leases that run out at once
    add(store, "ready")
    add(store, "urgent", priority=1)
    store.enqueue("q", "laned", (0, 0, "acme"), ["task", "m:f", "payload", b"[[],{}]"])
    add(store, "later", delay_ms=60_000)
    store.enqueue("q", "child", (0, 0, ""), ["task", "m:f", "payload", b"[[],{}]"], waits=1)
    r.zadd(K.scheduled, {"later": 0})  # due now
    r.zadd(K.waiting, {"child": 0})  # due a check now
    for job_id in ("ready", "urgent", "laned", "later", "running", "running2", "child"):
        r.delete(K.job(job_id))
    recovery = run(store.recover("q", limit=1, max_stalls=3))
    assert (recovery.count, recovery.ended, recovery.lost) == (1, [], ["running"])
    got = fetch(store, want=10)
    assert got.jobs == [] and sorted(got.lost) == ["laned", "later", "ready", "running2", "urgent"]
    assert run(store.check_waiting("q")) == (0, ["child"])
    assert r.hget(K.stats, "lost|") == b"7"
    assert r.llen(K.ready) + r.zcard(K.prioritized) + r.zcard(K.scheduled) == 0
    assert r.zcard(K.active) + r.zcard(K.waiting) == 0  # not found again and again


def test_a_job_id_ending_in_done_does_not_collide_with_a_done_list(store, r):
    add(store, "x")
    add(store, "x:done")
    store.scripts.wait(r, K, ["x"])  # x has a waiter: its end pushes a token
    jobs = fetch(store, want=2).jobs
    outcomes = [(j.id, j.token, "completed", b"1", 1000) for j in jobs]
    assert fetch(store, want=0, outcomes=outcomes).stale == []
    assert r.hget(K.job("x:done"), "state") == b"completed"
    assert r.lpop(K.done_signal("x")) == b"1"


def test_a_result_kept_for_years_gets_an_exact_expiry(store, r):
    add(store, "a")
    a = fetch(store).jobs[0]
    nine_years_ms = 9 * 365 * 86400 * 1000  # Lua would print this number as 2.8e+11
    fetch(store, want=0, outcomes=[(a.id, a.token, "completed", b"1", nine_years_ms)])
    assert r.pttl(K.job("a")) > nine_years_ms - 60_000


def test_fetch_wakes_another_worker_when_work_is_left(store, r):
    add(store, "a")
    add(store, "b")
    r.delete(K.marker)
    fetch(store, want=1)
    assert r.zrange(K.marker, 0, -1) == [b"m"]
    r.delete(K.marker)
    fetch(store, want=1)
    assert r.zcard(K.marker) == 0


# -- heartbeat, recover, requeue ------------------------------------------------------


def test_heartbeat_renews_held_leases_and_reports_lost_ones(store, r):
    add(store, "a")
    add(store, "b")
    a, b = fetch(store, lease_ms=1000).jobs
    before = r.zscore(K.active, "a")
    lost = run(store.heartbeat("q", 60_000, [(a.id, a.token), (b.id, b"99")]))
    assert lost == [LostLease("b", b"99", LeaseLoss.TAKEN_OVER)]
    assert r.zscore(K.active, "a") > before + 50_000
    assert r.zscore(K.active, "b") <= before + 1000


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ("cancel", LeaseLoss.CANCELLED),
        ("delete", LeaseLoss.DELETED),
        ("recover", LeaseLoss.TAKEN_OVER),  # its lease ran out: back to ready
        ("recover and lease", LeaseLoss.TAKEN_OVER),  # ...and another worker runs it
    ],
)
def test_a_lost_lease_and_a_discarded_outcome_say_why(store, r, change, why):
    """The reason comes from the script that finds the lease lost, so a
    worker's log says what happened, not a guess."""
    add(store, "a")
    a = fetch(store).jobs[0]
    if change == "cancel":
        store.cancel("q", "a", 60_000)
    elif change == "delete":
        store.delete("q", ["a"])
    else:
        r.zadd(K.active, {"a": 0})
        run(store.recover("q", max_stalls=3))
        if change == "recover and lease":
            fetch(store, worker="w2")
    assert run(store.heartbeat("q", 60_000, [(a.id, a.token)])) == [LostLease("a", a.token, why)]
    got = fetch(store, want=0, outcomes=[(a.id, a.token, "completed", b"1", 1000)])
    assert got.discarded == [("a", why)] and got.stale == ["a"]


@pytest.mark.parametrize("kind", ["completed", "retry", "failed"])
def test_an_outcome_reported_twice_is_discarded_as_recorded_already(store, r, kind):
    """A fetch whose reply was lost is sent again with the same outcomes: the
    second is not 'taken over', it was recorded by the first."""
    add(store, "a")
    a = fetch(store).jobs[0]
    outcome = (a.id, a.token, kind, b'{"type": "E"}', 60_000)
    assert fetch(store, want=0, outcomes=[outcome]).discarded == []
    assert fetch(store, want=0, outcomes=[outcome]).discarded == [("a", LeaseLoss.RECORDED)]


def test_recovery_names_each_job_its_worker_and_whether_it_failed(store, r):
    add(store, "a")
    fetch(store, worker="w1")
    r.zadd(K.active, {"a": 0})  # w1 stopped renewing it
    recovered = run(store.recover("q", max_stalls=2)).jobs
    assert recovered == [RecoveredJob("a", "m:f", "w1", 1, failed=False)]
    fetch(store, worker="w2")
    r.zadd(K.active, {"a": 0})
    got = fetch(store, worker="w3", max_stalls=2)  # a fetch recovers too, and says so
    assert got.recovered == [RecoveredJob("a", "m:f", "w2", 2, failed=False)]
    assert [j.id for j in got.jobs] == ["a"]
    r.zadd(K.active, {"a": 0})
    recovered = run(store.recover("q", max_stalls=2)).jobs
    assert recovered == [RecoveredJob("a", "m:f", "w3", 3, failed=True)]
    assert state(r, "a") == "failed"


def test_recover_requeues_expired_leases_first_in_line_and_counts_a_stall(store, r):
    add(store, "a")
    add(store, "b")
    fetch(store, want=1)  # a is active
    r.zadd(K.active, {"a": 0})
    assert run(store.recover("q", max_stalls=3)) == Recovery(
        1, [], [], [RecoveredJob("a", "m:f", "w1", 1, failed=False)]
    )
    assert state(r, "a") == "queued" and r.hget(K.job("a"), "stalls") == b"1"
    assert [j.id for j in fetch(store, want=1).jobs] == ["a"]  # ahead of b


def test_recover_leaves_live_leases_alone(store, r):
    add(store, "a")
    fetch(store, lease_ms=60_000)
    assert run(store.recover("q", max_stalls=3)) == Recovery(0, [], [], [])
    assert state(r, "a") == "active"


def test_a_job_that_stalls_too_often_fails_with_a_clear_error(store, r):
    add(store, "a")
    for _ in range(3):
        fetch(store)
        r.zadd(K.active, {"a": 0})
        run(store.recover("q", max_stalls=2))
    assert state(r, "a") == "failed"
    assert b"StalledJobError" in r.hget(K.job("a"), "error")
    assert r.zscore(K.failed, "a") is not None


def test_requeue_hands_back_without_counting_an_attempt(store, r):
    add(store, "a")
    a = fetch(store).jobs[0]
    assert run(store.requeue("q", [(a.id, a.token), ("ghost", b"1")])) == 1
    assert state(r, "a") == "queued"
    assert r.hget(K.job("a"), "attempts") == b"0"
    assert r.zcard(K.active) == 0
    assert fetch(store).jobs[0].attempts == 1


# -- retry, wait ------------------------------------------------------------------------


def test_retry_requeues_only_failed_jobs(store, r):
    add(store, "a")
    a = fetch(store).jobs[0]
    with pytest.raises(WrongState, match="only a failed job can be retried; job a is active"):
        store.retry("q", "a")
    fetch(store, want=0, outcomes=[(a.id, a.token, "failed", b"{}", 0)])
    store.retry("q", "a")
    assert state(r, "a") == "queued" and r.hget(K.job("a"), "attempts") == b"0"
    assert r.zcard(K.failed) == 0
    with pytest.raises(JobNotFound, match="no job nope in queue 'q'"):
        store.retry("q", "nope")


def test_wait_registers_a_waiter_that_the_outcome_wakes(store, r):
    add(store, "a")
    assert store.scripts.wait(r, K, ["a"]) == b"queued"
    assert r.hget(K.job("a"), "waiters") == b"1"
    a = fetch(store).jobs[0]
    fetch(store, want=0, outcomes=[(a.id, a.token, "completed", b"1", 1000)])
    assert r.lpop(K.done_signal("a")) == b"1"
    assert r.hget(K.job("a"), "waiters") is None
    assert store.scripts.wait(r, K, ["a"]) == b"completed"
    assert store.scripts.wait(r, K, ["missing"]) == b""


# -- jobs waiting for jobs ----------------------------------------------------------------


@pytest.mark.parametrize("in_asyncio", [False, True], ids=["sync", "asyncio"])
def test_a_parent_retried_while_a_job_registers_on_it_is_waited_for(
    store, r, monkeypatch, in_asyncio
):
    """add_dependent finds the parent ended (failed), and it is retried before
    the producer reads how it ended: the job registers on its new run and waits
    for it, rather than the producer failing on a parent with no end."""
    add(store, "p")
    p = fetch(store).jobs[0]
    fetch(store, want=0, outcomes=[(p.id, p.token, "failed", b"{}", 0)])
    fields = ["task", "m:g", "payload", b"[[],{}]", "parents", b'{"parents": ["q|p"]}']
    store.enqueue("q", "c", (0, 0, ""), fields, waits=1)

    retried = []
    sync_run, async_run = store._run, store._arun

    def retry_parent_once(call):
        if call[0] is store.scripts.add_dependent and not retried:
            retried.append(True)
            store.retry("q", "p")

    def run_then_retry(call):
        reply = sync_run(call)
        retry_parent_once(call)
        return reply

    async def arun_then_retry(call):
        reply = await async_run(call)
        retry_parent_once(call)
        return reply

    monkeypatch.setattr(store, "_run", run_then_retry)
    monkeypatch.setattr(store, "_arun", arun_then_retry)
    if in_asyncio:
        run(store.await_for(job_ref("q", "c"), [job_ref("q", "p")]))
    else:
        store.wait_for(job_ref("q", "c"), [job_ref("q", "p")])
    assert retried and state(r, "c") == "waiting"
    assert r.lrange(K.dependents("p"), 0, -1) == [b"q|c"]
    p = fetch(store).jobs[0]  # the parent's second run
    got = fetch(store, want=0, outcomes=[(p.id, p.token, "completed", b"1", 60_000)])
    assert got.ended == [("p", "completed", ["q|c"])]


# -- cron ------------------------------------------------------------------------------


def cron(store, previous, next_tick, lead_ms=1000):
    """One worker's pass: (tick merged, tick caught up, tick scheduled), 0 for none."""
    fields = ["task", "m:t", "payload", b"[[],{}]"]
    call = store.cron_schedule("q", "m:t", "cron:m:t:", previous, next_tick, lead_ms, fields)
    return run(call)


def test_cron_schedule_makes_the_next_tick_due_at_its_time_on_redis_clock(store, r):
    now = r.time()[0]
    assert cron(store, now - 60, now + 60) == (0, 0, now + 60)
    assert r.zscore(K.scheduled, f"cron:m:t:{now + 60}") == (now + 60) * 1000
    assert r.get(K.cron_mark("m:t")) == str(now + 60).encode()
    assert cron(store, now - 60, now + 60) == (0, 0, 0)  # another worker: done already


def test_cron_schedule_never_schedules_a_tick_at_or_before_the_mark(store, r):
    now = r.time()[0]
    cron(store, now - 60, now + 60)
    assert store.cancel("q", f"cron:m:t:{now + 60}", 60_000) == 1
    r.delete(K.job(f"cron:m:t:{now + 60}"))  # its kept record expired
    assert cron(store, now - 60, now + 60) == (0, 0, 0)  # a worker starting up
    assert cron(store, now - 180, now - 120) == (0, 0, 0)  # a stale view of the time
    assert r.zcard(K.scheduled) == 0 and r.llen(K.ready) == 0


def test_cron_schedule_catches_up_once_unless_the_last_tick_still_waits(store, r):
    now = r.time()[0]
    r.set(K.cron_mark("m:t"), now - 600)  # scheduled long ago; workers were down
    assert cron(store, now - 60, now + 60) == (0, now - 60, now + 60)
    assert state(r, f"cron:m:t:{now - 60}") == "queued"  # runs now
    assert cron(store, now - 60, now + 60) == (0, 0, 0)

    r.flushall()
    r.set(K.cron_mark("m:t"), now - 600)
    add(store, f"cron:m:t:{now - 600}", task="m:t")  # still waiting to run: covers the gap
    assert cron(store, now - 60, now + 60) == (0, 0, now + 60)
    assert r.llen(K.ready) == 1


def test_cron_schedule_merges_a_tick_into_the_run_still_waiting(store, r):
    now = r.time()[0]
    before, tick, after = now - 60, now + 1, now + 61
    assert cron(store, before, tick) == (0, 0, tick)  # scheduled ahead
    add(store, f"cron:m:t:{before}", task="m:t")  # the run before: queued, not started
    r.set(K.cron_run("m:t"), before)
    # Due within the lead, while the run before still waits: dropped, merged.
    assert cron(store, before, tick, lead_ms=5000) == (tick, 0, 0)
    assert not r.exists(K.job(f"cron:m:t:{tick}"))
    assert r.zcard(K.scheduled) == 0
    assert cron(store, tick, after) == (0, 0, after)  # never scheduled again
    assert r.lrange(K.ready, 0, -1) == [f"cron:m:t:{before}".encode()]  # one run waits

    # Once that run has started, the next tick stands on its own.
    fetch(store, want=1)
    assert cron(store, tick, after, lead_ms=120_000) == (0, 0, 0)
    assert state(r, f"cron:m:t:{after}") == "scheduled"
    assert r.get(K.cron_run("m:t")) == str(after).encode()


def test_cron_schedule_does_not_settle_a_tick_before_its_lead(store, r):
    now = r.time()[0]
    before, tick = now - 60, now + 60
    assert cron(store, before, tick) == (0, 0, tick)
    add(store, f"cron:m:t:{before}", task="m:t")
    r.set(K.cron_run("m:t"), before)
    assert cron(store, before, tick, lead_ms=1000) == (0, 0, 0)  # the run may yet start
    assert state(r, f"cron:m:t:{tick}") == "scheduled"


# -- a full Redis (maxmemory reached, noeviction) -------------------------------------


def test_out_of_memory_refuses_enqueues_but_leases_stay_renewed(private_redis):
    """With memory full, Redis refuses a script whose first write may allocate.
    New jobs must be refused with a clear error, but running jobs must keep
    their leases: if heartbeats failed while recovery went on, every running
    job would be taken over and run twice."""
    import redis as redis_py

    server = private_redis(aof=False)
    store = Store(server.url)
    client = store.clients.sync
    add(store, "a")
    a = fetch(store, lease_ms=1000).jobs[0]
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", 1)  # everything is over the limit now
    try:
        with pytest.raises(redis_py.ResponseError, match="Redis at .* is full"):  # RedisFull
            add(store, "b")
        before = client.zscore(K.active, "a")
        assert run(store.heartbeat("q", 60_000, [(a.id, a.token)])) == []
        assert client.zscore(K.active, "a") > before + 50_000
        got = fetch(store, want=1, outcomes=[(a.id, a.token, "completed", b"1", 1000)])
        assert got.stale == [] and client.hget(K.job("a"), "state") == b"completed"
    finally:
        client.config_set("maxmemory", 0)
        store.clients.close()
