"""The process pool: sync jobs in child processes that a timeout, a cancel or
a stopping worker kills; results, errors and progress crossing back; a child
that dies by itself; where each task runs (task option vs worker flag).

Real child processes throughout; in-process workers where the test needs the
worker's pid or a thread, ``tarefa worker`` subprocesses for signals.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading

import pytest

from tarefa import App, JobFailed, JobState
from tarefa.worker import Worker

from .. import tasks
from ..processes import alive
from ..tasks import add, pid
from ..waits import PATIENCE, wait_for_list, wait_until
from .test_recovery import log_of


def pids(r, tag: str, count: int) -> list[int]:
    return [int(p) for p in wait_for_list(r, f"test:pids:{tag}", count)]


def run_in_thread(worker: Worker) -> threading.Thread:
    thread = threading.Thread(target=asyncio.run, args=(worker.run(),))
    thread.start()
    return thread


def test_results_errors_and_progress_come_back_from_the_child(app, run_worker, r):
    jobs = {
        "add": add.enqueue(1, 2),
        "pid": pid.enqueue(),
        "whoami": tasks.whoami.with_options(queue="default").enqueue(),
        "fails": tasks.always_fails.enqueue("boom"),  # retries=2
        "flaky": tasks.flaky.enqueue("k", 2),
        "retry": tasks.retry_later.enqueue("k", 0.05),
        "unstorable": tasks.returns_unstorable.enqueue(),
        "interrupt": tasks.raises_keyboard_interrupt.enqueue(),
        "progress": tasks.report_progress_sync.enqueue(4),
        "bad_progress": tasks.bad_progress.enqueue(),
        "async": tasks.async_add.enqueue(2, 2),  # still on the event loop
    }
    worker = run_worker(pool="process", concurrency=3)
    assert worker.processes.pids == []  # all stopped with the worker

    assert jobs["add"].result(1) == 3
    assert jobs["pid"].result(1) != os.getpid()
    whoami = jobs["whoami"]
    assert whoami.result(1) == {
        "id": whoami.id, "queue": "default", "task": tasks.whoami.name, "attempt": 1,
    }  # fmt: skip
    assert jobs["flaky"].result(1) == 3  # third attempt, retried per its policy
    assert jobs["retry"].result(1) == "done" and jobs["retry"].attempts == 2
    assert jobs["async"].result(1) == 4

    fails = jobs["fails"]
    assert fails.status is JobState.FAILED and fails.attempts == 3
    with pytest.raises(JobFailed, match="ValueError: boom") as raised:
        fails.result(1)
    assert "raise ValueError(message)" in raised.value.traceback  # the child's own

    unstorable = jobs["unstorable"]
    assert unstorable.error["type"] == "ResultError" and unstorable.attempts == 1  # not retried
    assert jobs["interrupt"].error["type"] == "KeyboardInterrupt"

    progress = jobs["progress"]
    assert progress.result(1) == 4
    assert (progress.progress["value"], progress.progress["message"]) == (1.0, "step 4 of 4")
    assert "progress value must be a finite number" in jobs["bad_progress"].error["message"]


def test_children_are_reused_from_job_to_job(app, run_worker):
    jobs = pid.enqueue_many([()] * 20)
    run_worker(pool="process", concurrency=2)
    used = {job.result(1) for job in jobs}
    assert os.getpid() not in used
    assert 1 <= len(used) <= 2  # never more children than slots


def test_a_timed_out_job_is_killed_retried_and_the_next_job_gets_a_fresh_child(app, run_worker, r):
    job = tasks.stuck_in_process.enqueue("t")  # timeout 0.5 s, retries=1
    after = pid.enqueue()
    run_worker(pool="process", concurrency=1)
    killed = pids(r, "t", 2)  # both attempts, each in its own process
    assert len(set(killed)) == 2
    assert not any(alive(p) for p in killed)  # killed, not left running
    assert job.status is JobState.FAILED and job.attempts == 2
    with pytest.raises(JobFailed, match="TimeoutError: .*within 0.5 s; its process was killed"):
        job.result(1)
    # It ran once the first attempt was killed (before or after the retry): in
    # a fresh child, not in the killed one.
    assert after.result(1) not in {killed[0], os.getpid()}
    assert r.lrange("test:runs", 0, -1) == []  # no attempt got past its sleep


@pytest.mark.parametrize(
    "how, code",
    [("exit", "exit code 3"), ("segfault", "exit code -11, SIGSEGV"), ("kill", "exit code -9")],
)
def test_a_child_that_dies_fails_the_attempt_and_the_worker_goes_on(app, run_worker, r, how, code):
    job = tasks.dies.enqueue(how)  # retries=1
    after = add.enqueue(1, 1)
    worker = run_worker(pool="process", concurrency=1)
    assert job.status is JobState.FAILED and job.attempts == 2  # counted per its policy
    assert job.error["type"] == "WorkerProcessDied"
    assert code in job.error["message"]
    assert not any(alive(p) for p in pids(r, "dies", 2))
    assert after.result(1) == 2
    assert worker.processed == 3


def test_a_process_that_outgrows_max_memory_between_jobs_is_replaced(app, r):
    """Memory a job leaves behind (a cache, a thread it started) must not fail
    the next job: a process above the limit is replaced before it gets one."""
    worker = Worker(app, concurrency=1, max_memory="150M")
    thread = run_in_thread(worker)
    try:
        first = tasks.allocates_after_returning.enqueue(200)
        bloated = first.result(timeout=PATIENCE)
        r.rpush("test:release:grow", 1)  # its thread allocates 200 MiB, and holds them
        assert wait_for_list(r, "test:grown", 1) == [str(200 << 20)]
        after = tasks.pid_in_process.enqueue()
        assert after.result(timeout=PATIENCE) != bloated  # a new process
        assert after.attempts == 1  # nothing failed for it
        wait_until(lambda: not alive(bloated), what="the big process to be gone")
    finally:
        worker.stop()
        thread.join(PATIENCE)


def test_a_max_memory_below_what_a_new_process_needs_fails_its_jobs_clearly(app, run_worker):
    job = tasks.pid_in_process.enqueue()  # retries=0
    worker = run_worker(max_memory="1M")
    assert worker.processes.pids == []
    assert job.error["type"] == "ProcessPoolError"
    assert "more than the worker's max memory of 1 MiB: raise the limit" in job.error["message"]


def test_the_memory_read_elsewhere_than_linux_agrees_with_proc():
    """macOS and the rest read a process's memory with psutil: the same figure."""
    pytest.importorskip("psutil")
    from tarefa.worker.memory import _from_proc, _from_psutil

    child = subprocess.Popen([sys.executable, "-c", "b = bytearray(64 << 20); input()"],
                             stdin=subprocess.PIPE)  # fmt: skip
    try:
        wait_until(lambda: _from_proc(child.pid) > 64 << 20, what="the child to allocate")
        assert abs(_from_psutil(child.pid) - _from_proc(child.pid)) < 4 << 20
    finally:
        child.kill()
        child.wait()
    assert _from_proc(child.pid) is None and _from_psutil(child.pid) is None  # gone


def test_max_memory_is_checked(app):
    assert Worker(app, max_memory="1.5G").processes.max_memory == 3 << 29
    assert Worker(app, max_memory=1 << 20).processes.max_memory == 1 << 20
    assert Worker(app).processes.max_memory is None
    for bad in ("lots", "0", "-1G", 0):
        with pytest.raises(ValueError, match="size"):
            Worker(app, max_memory=bad)


def test_a_task_the_child_does_not_know_fails_with_unknown_task(app, run_worker):
    @app.task(name="tests.tasks:registered_late", pool="process")
    def registered_late() -> int:  # here only, not when a process imports tests.tasks
        return 1

    try:
        job = registered_late.enqueue()
        after = tasks.pid_in_process.enqueue()
        run_worker()
    finally:
        del app.tasks["tests.tasks:registered_late"]
    assert job.status is JobState.FAILED and job.attempts == 1  # not retried
    assert job.error["type"] == "UnknownTask"
    assert "registered_late" in job.error["message"]
    assert after.result(1) != os.getpid()


def test_the_task_option_wins_over_the_worker_pool(app, run_worker):
    on_process_worker = [pid.enqueue(), tasks.pid_in_thread.enqueue()]
    run_worker(pool="process")
    on_thread_worker = [pid.enqueue(), tasks.pid_in_process.enqueue()]
    run_worker()
    me = os.getpid()
    assert [j.result(1) == me for j in on_process_worker] == [False, True]
    assert [j.result(1) == me for j in on_thread_worker] == [True, False]


def test_cancelling_a_running_job_kills_its_process(app, r):
    job = tasks.hold_in_process.enqueue("c")
    worker = Worker(app, concurrency=1, lease=0.4)  # heartbeat every 0.1 s
    thread = run_in_thread(worker)
    try:
        [child] = pids(r, "c", 1)
        assert job.cancel() is True
        after = add.enqueue(1, 1)  # its slot is free once the child is gone
        assert after.result(timeout=PATIENCE) == 2
        assert not alive(child)
        assert job.status is JobState.CANCELLED
    finally:
        r.rpush("test:release:c", 1)
        worker.stop()
        thread.join(PATIENCE)
    assert r.lrange("test:runs", 0, -1) == []  # it never got to the end


def test_a_child_ignores_sigterm_the_worker_decides(app, r):
    """A SIGTERM to every process (systemd's default) must not end a job
    before the worker's grace period: only the worker kills a child."""
    job = tasks.hold_in_process.enqueue("s")
    worker = Worker(app, concurrency=1)
    thread = run_in_thread(worker)
    try:
        [child] = pids(r, "s", 1)
        os.kill(child, signal.SIGTERM)
        r.rpush("test:release:s", 1)
        assert job.result(timeout=PATIENCE) == "s"
    finally:
        worker.stop()
        thread.join(PATIENCE)
    assert not alive(child)  # stopped with the worker


def test_sigterm_past_the_grace_period_kills_the_child_and_hands_the_job_back(app, r, spawn_worker):
    job = tasks.hold_in_process.enqueue("g")
    w = spawn_worker("--pool", "process", "--lease", "1", "--grace", "0.3")
    [child] = pids(r, "g", 1)
    w.send_signal(signal.SIGTERM)  # and never release the job
    assert w.wait(timeout=PATIENCE) == 0, log_of(w)
    assert log_of(w).count("handed back to ready: the worker stopped before it ended") == 1
    assert not alive(child)
    info = job.info()
    assert (info.state, info.attempts, info.stalls) == ("queued", 0, 0)


def test_a_killed_worker_takes_its_children_with_it(app, r, spawn_worker):
    """Its job is recovered and runs elsewhere: the old attempt must not run on."""
    tasks.hold_in_process.enqueue("k")
    w = spawn_worker("--pool", "process")
    [child] = pids(r, "k", 1)
    w.send_signal(signal.SIGKILL)
    w.wait(timeout=PATIENCE)
    wait_until(lambda: not alive(child), what="the orphaned child to exit")
    assert r.lrange("test:runs", 0, -1) == []


def test_the_pool_option_is_checked(app):
    with pytest.raises(ValueError, match="pool must be 'thread' or 'process', not 'fork'"):
        app.task(pool="fork")
    with pytest.raises(ValueError, match="async: .*cannot use pool='process'"):

        @app.task(pool="process")
        async def not_here() -> None: ...

    with pytest.raises(TypeError, match="pool is set on @app.task"):
        add.with_options(pool="process")
    with pytest.raises(ValueError, match="pool must be"):
        Worker(app, pool="processes")
    with pytest.raises(ValueError, match="app_path"):
        Worker(App("redis://unused"), pool="process")  # bound to no module-level name
    assert Worker(app, pool="process").processes.app_path == "tests.tasks:app"
