"""Jobs that harm the process they run in: they crash it (``os._exit``, a
segfault), never return, or allocate without bound. Whatever the pool, no job
is lost: the harmful job fails per its policy (retries, or stalls when it
takes its worker down) and the other jobs keep flowing.

Real ``tarefa worker`` subprocesses and a real redis-server throughout. The
tests wait on events (BLPOP on lists the tasks push to, job.result(), process
exit) or poll a condition against a deadline where Redis offers no event.
"""

from __future__ import annotations

import time

import pytest

from tarefa import JobFailed, JobState, manage

from .. import tasks
from ..waits import PATIENCE, wait_for_list, wait_until
from .test_process_pool import alive, pids
from .test_recovery import log_of, runs

SIGNAL_DEATHS = {"exit": ("exit code 3", 3), "segfault": ("exit code -11, SIGSEGV", -11)}


def counts(app) -> dict[str, int]:
    return app.queue("default").counts()


# -- in a process: the process dies, the worker goes on ---------------------------------


@pytest.mark.parametrize("how", ["exit", "segfault"])
def test_a_process_job_that_crashes_its_process_fails_per_its_retries(app, r, spawn_worker, how):
    job = tasks.dies.enqueue(how)  # retries=1
    others = tasks.pid.enqueue_many([()] * 20)
    w = spawn_worker("--pool", "process", "-c", "2", "--burst")
    assert w.wait(timeout=PATIENCE) == 0, log_of(w)

    assert job.status is JobState.FAILED and job.attempts == 2  # retried once, per its policy
    with pytest.raises(JobFailed, match="WorkerProcessDied") as failed:
        job.result(1)
    assert SIGNAL_DEATHS[how][0] in failed.value.message
    assert [j.id for j in app.queue("default").failed_jobs()] == [job.id]  # dead-letter set
    dead = pids(r, "dies", 2)
    assert len(set(dead)) == 2 and not any(alive(p) for p in dead)  # a new process each time
    # Every other job ran, in children of the worker's; none in the process
    # the first attempt killed (it ran nothing else: it was the first job).
    used = {j.result(1) for j in others}
    assert dead[0] not in used and w.pid not in used
    assert counts(app)["completed"] == 20


# -- in a thread or on the event loop: the worker dies with it ---------------------------


@pytest.mark.parametrize(
    "task, how",
    [
        (tasks.kills_worker, "exit"),
        (tasks.kills_worker, "segfault"),
        (tasks.kills_worker_async, "segfault"),
    ],
    ids=["thread-exit", "thread-segfault", "async-segfault"],
)
def test_a_job_that_crashes_its_worker_fails_after_max_stalls(app, r, spawn_worker, task, how):
    job = task.enqueue(how)  # retries=0: a stall is not a failure, it does not count
    others = tasks.record.enqueue_many([(f"o{i}",) for i in range(10)])
    for attempt in range(1, 5):  # max_stalls is 3: the 4th recovery fails the job
        w = spawn_worker("-c", "1", "--lease", "0.5")
        [started] = wait_for_list(r, "test:started", 1)
        assert started == f"kills_worker {w.pid}"  # it ran in the worker itself...
        assert w.wait(timeout=PATIENCE) == SIGNAL_DEATHS[how][1]  # ...and took it down
        info = job.info()
        assert (info.state, info.attempts, info.stalls) == ("active", attempt, attempt - 1)

    last = spawn_worker("--burst", "--lease", "0.5")  # recovers it at start-up or heartbeat
    assert last.wait(timeout=PATIENCE) == 0, log_of(last)
    info = job.info()
    assert (info.state, info.attempts, info.stalls) == ("failed", 4, 4)
    with pytest.raises(JobFailed) as failed:
        job.result(1)
    assert failed.value.error_type == "StalledJobError"
    assert r.llen("test:started") == 0  # not run a 5th time
    # The others were never in flight with it (-c 1): each ran exactly once.
    assert sorted(runs(r)) == sorted(f"o{i}" for i in range(10))
    assert all(j.info().stalls == 0 for j in others)
    left = counts(app)
    assert (left["completed"], left["failed"], left["active"], left["queued"]) == (10, 1, 0, 0)
    assert [j.id for j in app.queue("default").failed_jobs()] == [job.id]


# -- a job that never returns ------------------------------------------------------------


def test_a_process_job_that_never_returns_is_killed_at_its_timeout(app, r, spawn_worker):
    job = tasks.stuck_in_process.enqueue("t")  # timeout 0.5 s, retries=1
    others = tasks.pid.enqueue_many([()] * 20)
    started = time.monotonic()
    w = spawn_worker("--pool", "process", "-c", "2", "--burst")
    assert w.wait(timeout=PATIENCE) == 0, log_of(w)
    assert time.monotonic() - started < 25  # not held up by a 30 s sleep

    assert job.status is JobState.FAILED and job.attempts == 2
    with pytest.raises(JobFailed, match="TimeoutError: .*its process was killed"):
        job.result(1)
    killed = pids(r, "t", 2)
    assert len(set(killed)) == 2 and not any(alive(p) for p in killed)
    assert killed[0] not in {j.result(1) for j in others}
    assert runs(r) == []  # no attempt got past its sleep


def test_a_thread_job_that_never_returns_fails_at_its_timeout_and_holds_only_its_slot(
    app, r, spawn_worker
):
    job = tasks.hangs_in_thread.enqueue("h")  # timeout 0.3 s, retries=1
    others = tasks.record.enqueue_many([(f"o{i}",) for i in range(20)])
    w = spawn_worker("-c", "3", "--lease", "0.5")
    # Both attempts start, time out, and block on in their threads: each holds
    # one of the three slots.
    assert sorted(wait_for_list(r, "test:started", 2)) == ["h 1", "h 2"]
    with pytest.raises(JobFailed, match="TimeoutError: .*did not finish within 0.3 s"):
        job.result(timeout=PATIENCE)
    assert job.attempts == 2 and job.status is JobState.FAILED
    # The third slot keeps the other jobs flowing, and the worker beats.
    assert [j.result(timeout=PATIENCE) for j in others] == [f"o{i}" for i in range(20)]
    [me] = [x for x in manage.workers(app) if x["pid"] == w.pid]
    assert me["last_beat_ago"] < 1

    # Only the third slot is free: one job at a time starts.
    held = tasks.hold.enqueue_many([("a",), ("b",)])
    assert wait_for_list(r, "test:started", 1) in (["a"], ["b"])
    assert r.blpop(["test:started"], timeout=0.5) is None  # one slot: the other waits
    # The hung threads return: their slots come back.
    r.rpush("test:release:h", 1, 1)
    assert wait_for_list(r, "test:returned", 2) == ["h", "h"]
    assert len(wait_for_list(r, "test:started", 1)) == 1  # the other one starts now
    held.append(tasks.hold.enqueue("c"))
    assert wait_for_list(r, "test:started", 1) == ["c"]  # three at once: every slot is back
    for tag in "abc":
        r.rpush(f"test:release:{tag}", 1)
    assert [j.result(timeout=PATIENCE) for j in held] == ["a", "b", "c"]
    w.terminate()
    assert w.wait(timeout=PATIENCE) == 0, log_of(w)


def test_sync_hooks_run_though_every_thread_is_held_by_a_job_that_never_returns(
    app, r, spawn_worker
):
    """The job's outcome waits for its hooks: were they to wait for a thread
    that a hung job holds, the outcome would never be reported."""
    job = tasks.hangs_with_hooks.enqueue("k")  # timeout 0.3 s, retries=1
    w = spawn_worker("-c", "2", "--lease", "0.5")
    assert sorted(wait_for_list(r, "test:started", 2)) == ["k 1", "k 2"]
    with pytest.raises(JobFailed, match="TimeoutError"):
        job.result(timeout=PATIENCE)  # both threads still held
    assert r.lrange("test:hooks", 0, -1) == [b"retry 1 TimeoutError", b"failure 2 TimeoutError"]
    wait_until(lambda: "all 2 slots are held by sync jobs" in log_of(w), what="the alarm")
    r.rpush("test:release:k", 1, 1)
    assert wait_for_list(r, "test:returned", 2) == ["k", "k"]
    assert tasks.add.enqueue(1, 2).result(timeout=PATIENCE) == 3  # the slots are back
    w.terminate()
    assert w.wait(timeout=PATIENCE) == 0, log_of(w)


def test_a_job_without_a_timeout_that_never_returns_keeps_its_lease(app, r, spawn_worker):
    """It holds its slot, but it is alive: its lease is renewed, and no other
    worker takes it over (it is not lost, nor run twice)."""
    job = tasks.hold.enqueue("n")  # no timeout
    # A lease of 3 s: A's heartbeat, every 0.75 s, keeps it even when a loaded
    # machine holds A back for seconds; B would recover it within 0.75 s of its end.
    a = spawn_worker("--lease", "3")
    assert wait_for_list(r, "test:started", 1) == ["n"]
    b = spawn_worker("--lease", "3")
    wait_until(lambda: len(manage.workers(app)) == 2, what="worker B to start")
    time.sleep(3 * 3)  # three leases pass: the scenario itself (nothing must happen)
    info = job.info()
    assert (info.state, info.attempts, info.stalls) == ("active", 1, 0)
    assert f":{a.pid}:" in info.worker
    r.rpush("test:release:n", 1)
    assert job.result(timeout=PATIENCE) == "n"
    assert runs(r) == ["n"]
    for w in (a, b):
        w.terminate()
        assert w.wait(timeout=PATIENCE) == 0, log_of(w)


# -- a job that allocates without bound ---------------------------------------------------


@pytest.mark.parametrize("how", ["grow", "buffer"])
def test_a_job_that_allocates_without_bound_is_killed_at_max_memory(app, r, spawn_worker, how):
    job = tasks.allocates.enqueue(how)  # retries=1
    others = tasks.pid.enqueue_many([()] * 20)
    w = spawn_worker("--pool", "process", "-c", "2", "--max-memory", "200M", "--burst")
    assert w.wait(timeout=PATIENCE) == 0, log_of(w)

    assert job.status is JobState.FAILED and job.attempts == 2  # retried once, per its policy
    with pytest.raises(JobFailed) as failed:
        job.result(1)
    assert failed.value.error_type == "WorkerProcessDied"
    assert "more than the worker's max memory of 200 MiB; it was killed" in failed.value.message
    assert [j.id for j in app.queue("default").failed_jobs()] == [job.id]
    killed = pids(r, "allocates", 2)
    assert len(set(killed)) == 2 and not any(alive(p) for p in killed)
    assert killed[0] not in {j.result(1) for j in others}  # the next jobs: new children
    assert counts(app)["completed"] == 20
    assert "more than the max memory of 200 MiB: killed" in log_of(w)
