"""A worker always stops: SIGTERM ends it within its grace period plus a few
seconds (at once when it is idle), a second SIGTERM cuts the grace short, and
nothing on the way out waits on a cancellation that a library or a job may
swallow. Real ``tarefa worker`` subprocesses; every wait has a generous
ceiling, which only a hang reaches."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tarefa import JobState

from .. import tasks
from ..conftest import PYTHONPATH, ROOT
from ..waits import PATIENCE, wait_for_list, wait_until
from .test_recovery import log_of

HANG = PATIENCE  # seconds: a worker that takes longer to stop is taken to hang


def stop(proc, *signals: int) -> int:
    for signum in signals:
        proc.send_signal(signum)
    try:
        return proc.wait(timeout=HANG)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the worker did not stop:\n{log_of(proc)}") from None


def test_a_worker_stops_after_one_of_its_async_jobs_was_cancelled(app, r, spawn_worker):
    """Cancelling a running async job, then SIGTERM: the worker used to sit idle
    for ever (its heartbeat swallowed the cancellation that was to end it)."""
    tasks.add.with_options(queue="later", delay=3600).enqueue(1, 2)  # work on another queue
    for round_ in range(3):
        w = spawn_worker("-q", "default", "-q", "later", "--lease", "1")
        job = tasks.ahold.enqueue(f"a{round_}", 300)
        wait_for_list(r, "test:started", 1, timeout=HANG)
        job.cancel()
        wait_until(lambda j=job: j.status is JobState.CANCELLED, "the cancel")
        assert stop(w, signal.SIGTERM) == 0, log_of(w)


def test_a_job_that_swallows_its_cancellation_does_not_hold_the_worker(app, r, spawn_worker):
    job = tasks.ignores_cancel.enqueue("stubborn")
    other = tasks.ahold.enqueue("other", 300)
    w = spawn_worker("--grace", "1", "-c", "2")
    wait_for_list(r, "test:started", 2, timeout=HANG)
    assert stop(w, signal.SIGTERM) == 0, log_of(w)
    assert b"stubborn" in r.lrange("test:cancel-ignored", 0, -1)  # asked to stop, it did not
    assert job.status is JobState.QUEUED and other.status is JobState.QUEUED  # handed back
    assert job.attempts == 0 and other.attempts == 0  # not counted: not their doing


def test_a_second_sigterm_cuts_the_grace_period_short(app, r, spawn_worker):
    jobs = [tasks.hold.enqueue("sync", 300), tasks.ahold.enqueue("async", 300)]
    w = spawn_worker("--grace", "300", "-c", "2")
    wait_for_list(r, "test:started", 2, timeout=HANG)
    w.send_signal(signal.SIGTERM)
    wait_until(lambda: "finishing running jobs" in log_of(w), "the first SIGTERM")
    assert stop(w, signal.SIGTERM) == 0, log_of(w)  # far sooner than the 300 s of grace
    assert [j.status for j in jobs] == [JobState.QUEUED, JobState.QUEUED]  # handed back
    r.rpush("test:release:sync", "go")  # the thread still holds it; let it end


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_the_app_is_imported_ends_the_start_cleanly(r, tmp_path, signum):
    importing = tmp_path / "importing"
    env = dict(os.environ, PYTHONPATH=PYTHONPATH, TAREFA_TEST_IMPORTING=str(importing))
    out = subprocess.Popen(
        [sys.executable, "-m", "tarefa", "worker", "tests.slow_import:app"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    wait_until(importing.exists, "the import to begin")
    out.send_signal(signum)
    output, _ = out.communicate(timeout=HANG)
    assert out.returncode == 0, output
    assert "Traceback" not in output
    assert f"{signal.Signals(signum).name} before the worker started" in output


@pytest.mark.parametrize("task", ["add", "async_add", "pid_in_process"])
def test_a_burst_worker_exits_once_the_queue_is_empty(app, spawn_worker, task):
    fn = getattr(tasks, task)
    jobs = fn.enqueue_many([(1, 2)] * 20 if task != "pid_in_process" else [()] * 20)
    for _ in range(3):
        w = spawn_worker("--burst", "-c", "4")
        assert stop(w) == 0, log_of(w)  # no signal: it ends by itself
        assert all(j.status is JobState.COMPLETED for j in jobs)
        jobs = fn.enqueue_many([(1, 2)] * 5 if task != "pid_in_process" else [()] * 5)


# -- an async job that blocks the event loop -----------------------------------------


def test_an_async_job_that_blocks_the_loop_keeps_its_lease_and_times_out_once(app, r, spawn_worker):
    """``time.sleep`` in an ``async def`` task, for 1.5 leases and 3 times its
    timeout: its lease holds (no other worker takes it over to run it again),
    the worker names the job that held its loop, and the job fails with a
    timeout that says why, once."""
    job = tasks.blocks_loop.enqueue("blocker", 3)  # timeout=1, retries=0
    w = spawn_worker("--lease", "2")
    wait_for_list(r, "test:started", 1, timeout=HANG)
    other = spawn_worker("--lease", "2")  # would take the job over if its lease ran out
    wait_until(lambda: job.status is JobState.FAILED, "the job to fail")
    assert r.lrange("test:runs", 0, -1) == [b"blocker"]  # it ran once, to its end
    assert job.attempts == 1
    assert job.error["type"] == "TimeoutError"
    assert "holding the event loop" in job.error["message"]
    wait_until(lambda: "held the event loop for" in log_of(w), "the log line")
    assert f"job {job.id} (tests.tasks:blocks_loop) has held the event loop" in log_of(w)
    assert stop(w, signal.SIGTERM) == 0 and stop(other, signal.SIGTERM) == 0


def test_an_async_job_that_holds_the_loop_for_good_fails_and_its_worker_exits(app, r, spawn_worker):
    """Held past its timeout and two leases, the loop will not come back: the
    job fails (a timeout), the worker's other job is handed back, and the
    worker exits (3) for its supervisor to start a fresh one."""
    other = tasks.ahold.enqueue("bystander", 300)
    w = spawn_worker("--lease", "1", "-c", "2")
    wait_for_list(r, "test:started", 1, timeout=HANG)
    job = tasks.blocks_loop.enqueue("forever", 3600)
    wait_for_list(r, "test:started", 1, timeout=HANG)
    assert stop(w) == 3, log_of(w)
    assert job.status is JobState.FAILED and job.attempts == 1
    error = job.error
    assert error["type"] == "TimeoutError" and "held the worker's event loop" in error["message"]
    assert other.status is JobState.QUEUED and other.attempts == 0  # handed back, not stalled
    assert "CRITICAL" in log_of(w)


def test_a_short_run_of_the_stop_stress_script_has_no_hang(tmp_path):
    """bench/stop_stress.py (1,000 rounds of each kind by default), shortened:
    workers cancelled mid-job then stopped, and burst workers, in each pool."""
    out = subprocess.run(
        [sys.executable, "bench/stop_stress.py", "--rounds", "6", "--logs", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "hangs" in out.stdout
