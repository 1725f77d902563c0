"""Faults under real worker processes: SIGKILL, SIGTERM (drain and hand-back),
Redis restarted under a running worker, jobs that keep killing their worker,
and a frozen worker whose lease was taken over (fencing).

Everything is real: a redis-server, workers started as ``tarefa worker``
subprocesses. The tests wait on r (BLPOP on lists the tasks push to,
job.result(), process exit) or, where Redis offers no event (queue counts, a
line in a worker's log), poll a condition against a deadline.
"""

from __future__ import annotations

import signal
import time
from collections import Counter

import pytest
import redis

from tarefa import App, JobFailed, manage

from ..tasks import hold, record
from ..waits import PATIENCE, wait_for_list, wait_until

DONE_NOTHING_LEFT = {"queued": 0, "waiting": 0, "scheduled": 0, "active": 0, "failed": 0}


def log_of(proc) -> str:
    return proc.log_path.read_text(errors="replace")


def runs(client: redis.Redis) -> list[str]:
    return [x.decode() for x in client.lrange("test:runs", 0, -1)]


def kill(proc) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=PATIENCE)


def test_sigkill_mid_job_loses_nothing_and_reruns_only_jobs_in_flight(app, r, spawn_worker):
    held = {f"h{i}": hold.enqueue(f"h{i}") for i in range(3)}  # first in line: leased first
    record_jobs = record.enqueue_many([(f"r{i}",) for i in range(200)])
    tag_of = {job.id: f"r{i}" for i, job in enumerate(record_jobs)} | {
        job.id: tag for tag, job in held.items()
    }
    all_jobs = [*held.values(), *record_jobs]

    a = spawn_worker("-c", "4", "--lease", "1")
    assert sorted(wait_for_list(r, "test:started", 3)) == sorted(held)
    wait_until(lambda: r.llen("test:runs") >= 20, what="worker A to run some record jobs")
    kill(a)

    # What A held when it died: only these may run twice.
    in_flight = {job.id for job in all_jobs if job.info().state == "active"}
    assert {job.id for job in held.values()} <= in_flight
    assert len(in_flight) <= 4  # never more leases than A's concurrency
    counts = app.queue("default").counts()
    assert counts["active"] == len(in_flight)
    assert counts["completed"] + counts["active"] + counts["queued"] == len(all_jobs)

    b = spawn_worker("--burst", "--lease", "1")
    # B recovers A's expired leases and starts the held jobs again.
    assert sorted(wait_for_list(r, "test:started", 3)) == sorted(held)
    for tag in held:
        r.rpush(f"test:release:{tag}", 1)
    assert b.wait(timeout=PATIENCE) == 0, log_of(b)

    ran = Counter(runs(r))
    assert set(ran) == set(tag_of.values()), "some jobs never ran"  # zero lost
    twice = {tag for tag, n in ran.items() if n > 1}
    assert twice <= {tag_of[i] for i in in_flight}, f"{twice} ran twice but were not in flight"
    assert all(ran[tag] == 1 for tag in held)  # A's attempt died before recording
    assert sum(ran.values()) - len(all_jobs) == len(twice)

    assert app.queue("default").counts() == DONE_NOTHING_LEFT | {"completed": len(all_jobs)}
    for tag, job in held.items():
        assert job.result(timeout=PATIENCE) == tag
        info = job.info()
        assert (info.state, info.stalls, info.attempts) == ("completed", 1, 2)
    for job in record_jobs:
        info = job.info()
        assert info.state == "completed"
        assert info.stalls == (1 if job.id in in_flight else 0)


def test_sigterm_lets_running_jobs_finish_and_fetches_nothing_new(app, r, spawn_worker):
    jobs = {f"d{i}": hold.enqueue(f"d{i}") for i in range(2)}
    w = spawn_worker("-c", "4", "--lease", "1", "--grace", "60")
    assert sorted(wait_for_list(r, "test:started", 2)) == sorted(jobs)

    w.send_signal(signal.SIGTERM)
    wait_until(lambda: "SIGTERM: finishing running jobs" in log_of(w), what="the SIGTERM log")
    late = record.enqueue("late")  # enqueued while the worker drains: not for it
    released = time.monotonic()
    for tag in jobs:
        r.rpush(f"test:release:{tag}", 1)

    assert w.wait(timeout=PATIENCE) == 0, log_of(w)
    # It left when its jobs ended, not at the grace (far apart: a loaded
    # machine may take seconds to report two jobs and exit).
    assert time.monotonic() - released < 30
    for tag, job in jobs.items():
        assert job.result(timeout=PATIENCE) == tag
        info = job.info()
        assert (info.state, info.attempts, info.stalls) == ("completed", 1, 0)
    assert sorted(runs(r)) == sorted(jobs)  # each ran once; "late" did not run
    assert late.info().state == "queued"
    assert app.queue("default").counts() == {
        "queued": 1, "waiting": 0, "scheduled": 0, "active": 0, "completed": 2, "failed": 0,
    }  # fmt: skip


def test_sigterm_past_the_grace_period_hands_the_job_back_without_an_attempt(app, r, spawn_worker):
    job = hold.enqueue("g")
    w = spawn_worker("--lease", "1", "--grace", "0.3")
    assert wait_for_list(r, "test:started", 1) == ["g"]
    assert job.info().attempts == 1

    w.send_signal(signal.SIGTERM)  # and never release the job
    assert w.wait(timeout=PATIENCE) == 0, log_of(w)
    info = job.info()
    assert (info.state, info.attempts, info.stalls) == ("queued", 0, 0)
    assert app.queue("default").counts() == {
        "queued": 1, "waiting": 0, "scheduled": 0, "active": 0, "completed": 0, "failed": 0,
    }  # fmt: skip
    assert log_of(w).count("handed back to ready: the worker stopped before it ended") == 1

    b = spawn_worker("--burst", "--lease", "1")
    assert wait_for_list(r, "test:started", 1) == ["g"]
    r.rpush("test:release:g", 1)
    assert job.result(timeout=PATIENCE) == "g"
    assert b.wait(timeout=PATIENCE) == 0, log_of(b)
    info = job.info()
    assert (info.state, info.attempts, info.stalls) == ("completed", 1, 0)
    assert runs(r) == ["g"]


def test_a_job_that_ends_during_the_grace_period_is_reported_at_once(app, r, spawn_worker):
    """While a deploy waits for a long job, the short ones that end are reported
    straight away: their leases must not run out and be taken over."""
    quick, slow = hold.enqueue("quick"), hold.enqueue("slow")
    w = spawn_worker("--lease", "0.5", "--grace", "20")
    assert sorted(wait_for_list(r, "test:started", 2)) == ["quick", "slow"]
    w.send_signal(signal.SIGTERM)
    wait_until(lambda: "SIGTERM: finishing" in log_of(w), what="the signal to land")
    r.rpush("test:release:quick", 1)
    assert quick.result(timeout=PATIENCE) == "quick"  # reported while "slow" still runs
    time.sleep(1.5)  # three leases pass: an unreported "quick" would be recovered now
    r.rpush("test:release:slow", 1)
    assert w.wait(timeout=PATIENCE) == 0, log_of(w)
    assert slow.result(timeout=1) == "slow"
    assert sorted(runs(r)) == ["quick", "slow"]  # each ran once
    assert (quick.info().attempts, quick.info().stalls) == (1, 0)


def test_a_second_sigterm_stops_at_once_and_hands_the_jobs_back(app, r, spawn_worker):
    jobs = hold.enqueue_many([("x",), ("y",)])
    w = spawn_worker("--grace", "60")
    assert sorted(wait_for_list(r, "test:started", 2)) == ["x", "y"]
    w.send_signal(signal.SIGTERM)
    wait_until(lambda: "SIGTERM: finishing" in log_of(w), what="the first signal to land")
    w.send_signal(signal.SIGTERM)  # an impatient operator: no 60 s wait
    assert w.wait(timeout=PATIENCE) == 0, log_of(w)
    assert log_of(w).count("handed back to ready: the worker stopped before it ended") == 2
    assert [(j.info().state, j.info().attempts) for j in jobs] == [("queued", 0)] * 2


def test_redis_restarted_under_a_running_worker_loses_nothing(private_redis, spawn_worker):
    server = private_redis()  # AOF on
    producer = App(server.url)
    client = redis.Redis.from_url(server.url)
    try:
        task = producer.by_name("tests.tasks:record")
        first = task.enqueue_many([(f"a{i}",) for i in range(1500)])
        w = spawn_worker("-c", "4", "--lease", "1", url=server.url)
        wait_until(lambda: client.llen("test:runs") >= 50, what="the worker to run some jobs")
        assert producer.queue("default").counts()["completed"] < len(first)  # mid-stream

        server.kill(signal.SIGKILL)
        server.start()  # same port, data from the AOF
        second = task.enqueue_many([(f"b{i}",) for i in range(200)])
        total = len(first) + len(second)

        wait_until(
            lambda: producer.queue("default").counts() == DONE_NOTHING_LEFT | {"completed": total},
            what="every job to complete after the restart",
        )
        assert w.poll() is None, "the worker died with Redis:\n" + log_of(w)
        ran = set(runs(client))
        assert ran == {f"a{i}" for i in range(1500)} | {f"b{i}" for i in range(200)}

        w.send_signal(signal.SIGTERM)  # still a healthy worker: it stops cleanly
        assert w.wait(timeout=PATIENCE) == 0, log_of(w)
    finally:
        producer.close()
        client.close()


def test_a_worker_started_while_redis_is_down_waits_for_it_and_stops_when_told(
    private_redis, spawn_worker
):
    server = private_redis()
    server.kill()  # down before the workers start
    waiting = spawn_worker(url=server.url)
    stopped = spawn_worker(url=server.url)
    for w in (waiting, stopped):
        wait_until(lambda w=w: "retrying in" in log_of(w), what="the worker to meet the outage")
    stopped.send_signal(signal.SIGTERM)  # a deploy while Redis is down: it stops, at once
    assert stopped.wait(timeout=PATIENCE) == 0, log_of(stopped)
    server.start()
    job = App(server.url).by_name("tests.tasks:add").enqueue(2, 3)
    assert job.result(timeout=PATIENCE) == 5  # the other one connected once Redis came
    waiting.send_signal(signal.SIGTERM)
    assert waiting.wait(timeout=PATIENCE) == 0, log_of(waiting)


def test_a_job_that_keeps_killing_its_worker_fails_after_max_stalls(app, r, spawn_worker):
    job = hold.enqueue("s")
    for attempt in range(1, 5):  # max_stalls is 3: the 4th recovery fails the job
        w = spawn_worker("--lease", "0.5")
        assert wait_for_list(r, "test:started", 1) == ["s"]
        info = job.info()
        assert (info.state, info.attempts, info.stalls) == ("active", attempt, attempt - 1)
        kill(w)

    last = spawn_worker("--burst", "--lease", "0.5")  # recovers at start-up or heartbeat
    assert last.wait(timeout=PATIENCE) == 0, log_of(last)

    info = job.info()
    assert info.state == "failed"
    assert info.stalls == 4
    assert info.attempts == 4
    assert info.error["type"] == "StalledJobError"
    with pytest.raises(JobFailed) as failed:
        job.result(timeout=1)
    assert failed.value.error_type == "StalledJobError"
    assert r.llen("test:started") == 0  # not started a 5th time
    assert runs(r) == []
    assert app.queue("default").counts() == {
        "queued": 0, "waiting": 0, "scheduled": 0, "active": 0, "completed": 0, "failed": 1,
    }  # fmt: skip
    assert manage.totals(app, "default")["failed"] == 1  # counted though no worker saw it end
    assert [j.id for j in app.queue("default").failed_jobs()] == [job.id]


def test_a_job_recovered_from_a_frozen_worker_restarts_within_about_a_lease(app, r, spawn_worker):
    """--lease bounds how long a job waits after its worker stops: B recovers it
    once the lease expires and should start it then, not seconds later."""
    job = hold.enqueue("p")
    a = spawn_worker("--lease", "0.5")
    assert wait_for_list(r, "test:started", 1) == ["p"]
    # A is idle apart from the job: it waits for work in BZPOPMIN, as idle workers do.
    wait_until(
        lambda: any(c["cmd"] == "bzpopmin" and "b" in c["flags"] for c in r.client_list()),
        what="worker A to block waiting for work",
    )
    a.send_signal(signal.SIGSTOP)
    try:
        # B's idle check a minute apart: a recovered job that B left to it
        # (rather than fetch it at once) would start a minute late.
        b = spawn_worker("--lease", "0.5", idle_check=60)
        # Counted from B's start-up on: starting a process is what a loaded
        # machine slows down most, and it is not what is measured here.
        wait_until(lambda: b.pid in {x["pid"] for x in manage.workers(app)}, what="B to start")
        started_up = time.monotonic()
        assert wait_for_list(r, "test:started", 1) == ["p"]
        took = time.monotonic() - started_up
        r.rpush("test:release:p", 1, 1)
        assert job.result(timeout=PATIENCE) == "p"
        # At most the rest of the lease (0.5 s) and a heartbeat (0.125 s), twice
        # if A's fetch queued behind its wait for work leased the job once more,
        # and a loaded machine's margin: less than a recovery every 5 s would take.
        assert took < 2 * (0.5 + 0.125) + 3, (
            f"the recovered job restarted only after {took:.1f} s:\n" + log_of(b)
        )
    finally:
        a.send_signal(signal.SIGCONT)


def test_a_frozen_worker_cannot_overwrite_the_attempt_that_took_over(app, r, spawn_worker):
    job = hold.enqueue("f")
    a = spawn_worker("--lease", "0.5")
    assert wait_for_list(r, "test:started", 1) == ["f"]
    # A has free slots: it blocks waiting for more work. Freeze it there.
    wait_until(
        lambda: any(c["cmd"] == "bzpopmin" for c in r.client_list()),
        what="worker A to block waiting for work",
    )
    a.send_signal(signal.SIGSTOP)  # frozen: its lease runs out, unrenewed
    try:
        b = spawn_worker("--burst", "--lease", "0.5")
        assert wait_for_list(r, "test:started", 1) == ["f"]  # taken over by B
        # Both attempts wait on the same list (A's BLPOP is still registered in
        # Redis): one token each.
        r.rpush("test:release:f", 1, 1)
        assert job.result(timeout=PATIENCE) == "f"
        assert b.wait(timeout=PATIENCE) == 0, log_of(b)
        finished = job.info()
        assert finished.state == "completed"
        # B's recovery took the job from A (a stall). If A froze with a fetch
        # queued behind its wait for work, Redis may lease the job to that fetch
        # (attempt 2); that lease runs out too and B runs attempt 3. Which fetch
        # comes first is up to the machine's timing; every lease but B's stalled.
        assert finished.attempts in (2, 3)
        assert finished.stalls == finished.attempts - 1
        assert f":{b.pid}:" in finished.worker
    finally:
        a.send_signal(signal.SIGCONT)

    # A wakes up, finishes its stale attempt and reports it: the report is fenced off.
    wait_until(lambda: "discarded" in log_of(a), what="worker A to report its stale outcome")
    assert a.poll() is None  # A carries on
    assert job.info() == finished  # nothing overwritten
    assert runs(r) == ["f", "f"]  # both attempts ran to the end (at least once)
    assert app.queue("default").counts() == {
        "queued": 0, "waiting": 0, "scheduled": 0, "active": 0, "completed": 1, "failed": 0,
    }  # fmt: skip
