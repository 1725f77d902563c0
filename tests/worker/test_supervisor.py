"""``tarefa worker -p N``: a supervisor forks N worker processes, replaces
those that die (backing off while they die young), drains them all on
SIGTERM, and leaves none behind when it is killed. Real ``tarefa worker``
subprocesses and a real Redis; every wait is on a condition, with a
generous ceiling."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections import Counter
from datetime import datetime

import httpx
import pytest

from tarefa import JobState, manage

from .. import tasks
from ..processes import alive
from ..test_cli import tarefa
from ..waits import PATIENCE, wait_for_list, wait_until
from .test_recovery import log_of

STARTED = re.compile(r"^(\S+ \S+) .*worker process (\d+) started: pid (\d+)$", re.M)
BACKING_OFF = re.compile(r"worker process (\d+) \(pid \d+\) .* replacing it in (\d+) s", re.M)


def started(proc) -> list[tuple[datetime, int, int]]:
    """(when, process number, pid) of each child the supervisor started."""
    return [
        (datetime.strptime(when, "%Y-%m-%d %H:%M:%S,%f"), int(number), int(pid))
        for when, number, pid in STARTED.findall(log_of(proc))
    ]


def child_pids(proc) -> set[int]:
    return {pid for _, _, pid in started(proc)}


def registered(app) -> set[int]:
    """The pids of the workers registered in Redis (``tarefa workers``)."""
    return {w["pid"] for w in manage.workers(app)}


def worker_pid(job) -> int:
    """The pid of the worker that ran the job (its id: host:pid:suffix)."""
    return int(job.info().worker.split(":")[1])


def stop(proc, signum: int = signal.SIGTERM) -> int:
    proc.send_signal(signum)
    try:
        return proc.wait(timeout=PATIENCE)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the supervisor did not stop:\n{log_of(proc)}") from None


def test_n_worker_processes_register_and_share_the_jobs(app, r, spawn_worker):
    sup = spawn_worker("-p", "3", "-c", "1")
    wait_until(lambda: len(registered(app)) == 3, "three registered workers")
    pids = registered(app)
    wait_until(lambda: child_pids(sup) == pids, "the supervisor's children to be the workers")
    assert sup.pid not in pids
    # Each in a process group of its own: a terminal's Ctrl-C reaches the supervisor alone.
    assert all(os.getpgid(pid) == pid for pid in pids)
    jobs = [tasks.hold.enqueue(f"h{i}") for i in range(3)]
    wait_for_list(r, "test:started", 3)  # one slot each: all three run at once
    for i in range(3):
        r.rpush(f"test:release:h{i}", "go")
    assert [j.result(timeout=PATIENCE) for j in jobs] == ["h0", "h1", "h2"]
    assert {worker_pid(j) for j in jobs} == pids
    assert stop(sup) == 0, log_of(sup)


def test_a_killed_worker_process_is_replaced(app, r, spawn_worker):
    sup = spawn_worker("-p", "2", "-c", "1")
    wait_until(lambda: len(registered(app)) == 2, "two registered workers")
    first = child_pids(sup)
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: len(child_pids(sup)) == 3, "a replacement")
    (replacement,) = child_pids(sup) - first
    assert f"(pid {victim}) was killed by SIGKILL" in log_of(sup)
    wait_until(lambda: replacement in registered(app), "the replacement to register")
    jobs = [tasks.hold.enqueue(f"h{i}") for i in range(2)]
    wait_for_list(r, "test:started", 2)
    for i in range(2):
        r.rpush(f"test:release:h{i}", "go")
    assert [j.result(timeout=PATIENCE) for j in jobs] == ["h0", "h1"]
    assert replacement in {worker_pid(j) for j in jobs}  # it runs jobs
    assert stop(sup) == 0, log_of(sup)


def test_sigterm_drains_every_worker_process_then_exits_0(app, r, spawn_worker):
    sup = spawn_worker("-p", "2", "-c", "1", "--grace", str(PATIENCE))
    jobs = [tasks.hold.enqueue(f"h{i}") for i in range(2)]
    wait_for_list(r, "test:started", 2)
    pids = child_pids(sup)
    sup.send_signal(signal.SIGTERM)
    wait_until(lambda: log_of(sup).count("SIGTERM: finishing running jobs") == 2, "both told")
    assert sup.poll() is None  # waiting for the running jobs
    for i in range(2):
        r.rpush(f"test:release:h{i}", "go")
    assert sup.wait(PATIENCE) == 0, log_of(sup)
    assert [j.status for j in jobs] == [JobState.COMPLETED] * 2  # finished, not handed back
    assert not any(alive(pid) for pid in pids)
    assert registered(app) == set()  # each unregistered as it stopped
    assert "all worker processes have exited" in log_of(sup)


def test_a_second_sigterm_stops_the_worker_processes_now(app, r, spawn_worker):
    sup = spawn_worker("-p", "2", "-c", "1", "--grace", "300")
    job = tasks.hold.enqueue("long", 300)
    wait_for_list(r, "test:started", 1)
    # Both running (a worker registers once its own handlers are in place):
    # one signalled sooner ends its start instead, logging no grace.
    wait_until(lambda: len(registered(app)) == 2, "two registered workers")
    sup.send_signal(signal.SIGTERM)
    wait_until(lambda: log_of(sup).count("SIGTERM: finishing running jobs") == 2, "both told")
    assert stop(sup) == 0, log_of(sup)  # far sooner than the 300 s of grace
    assert job.status is JobState.QUEUED  # handed back
    r.rpush("test:release:long", "go")


def test_a_crash_loop_backs_off_and_still_stops_at_once(redis_url, spawn_worker):
    """Redis refuses the credentials: each child dies as it starts; the delay
    before the next doubles, and a SIGTERM meanwhile ends the supervisor
    without waiting it out."""
    refused = redis_url.replace("redis://", "redis://nobody:wrong@", 1)
    sup = spawn_worker("-p", "2", url=refused)

    def delays(number: int) -> list[int]:
        return [int(d) for n, d in BACKING_OFF.findall(log_of(sup)) if int(n) == number]

    wait_until(lambda: delays(1)[3:] and delays(2)[3:], "four deaths of each")
    assert delays(1)[:4] == delays(2)[:4] == [1, 2, 4, 8]
    assert "refused the credentials" in log_of(sup)
    starts = [when for when, number, _ in started(sup) if number == 1]
    gaps = [(b - a).total_seconds() for a, b in zip(starts, starts[1:], strict=False)]
    assert all(gap >= delay for gap, delay in zip(gaps, [1, 2, 4], strict=False)), gaps
    began = time.monotonic()
    assert stop(sup) == 0, log_of(sup)  # neither child alive: nothing to wait for
    assert time.monotonic() - began < 6.0  # not the 8 s back-off
    assert "started" not in log_of(sup).split("SIGTERM: stopping")[1]


def test_max_jobs_per_process_replaces_each_process_after_that_many_jobs(app, r, spawn_worker):
    sup = spawn_worker("-p", "2", "--max-jobs-per-process", "5")
    tags = [f"j{i}" for i in range(20)]
    jobs = tasks.record.enqueue_many([(tag,) for tag in tags])
    assert [j.result(timeout=PATIENCE) for j in jobs] == tags
    assert sorted(r.lrange("test:runs", 0, -1)) == sorted(t.encode() for t in tags)  # once each
    assert all(j.attempts == 1 for j in jobs)
    per_pid = Counter(worker_pid(j) for j in jobs)
    assert len(per_pid) >= 4 and max(per_pid.values()) <= 5, per_pid
    assert "exited cleanly" in log_of(sup) and "soon after it started" not in log_of(sup)
    assert stop(sup) == 0, log_of(sup)


def test_a_killed_supervisor_leaves_no_orphan(app, r, spawn_worker):
    """SIGKILL to the supervisor: each child is sent SIGTERM by the kernel
    (PR_SET_PDEATHSIG), finishes its running job and exits."""
    sup = spawn_worker("-p", "2", "-c", "1", "--grace", str(PATIENCE))
    job = tasks.hold.enqueue("h")
    wait_for_list(r, "test:started", 1)
    wait_until(lambda: len(registered(app)) == 2, "two registered workers")
    pids = child_pids(sup)
    assert stop(sup, signal.SIGKILL) == -signal.SIGKILL
    wait_until(lambda: log_of(sup).count("SIGTERM: finishing running jobs") == 2, "both told")
    r.rpush("test:release:h", "go")
    assert job.result(timeout=PATIENCE) == "h"  # drained, not cut short
    wait_until(lambda: not any(alive(pid) for pid in pids), "the children to exit")
    assert registered(app) == set()


def test_auto_burst_runs_one_process_per_cpu_until_the_queue_is_empty(app, spawn_worker):
    cpus = getattr(os, "process_cpu_count", os.cpu_count)()
    jobs = tasks.add.enqueue_many([(i, 1) for i in range(30)])
    sup = spawn_worker("-p", "auto", "--burst")
    assert sup.wait(PATIENCE) == 0, log_of(sup)  # no signal: each finished
    assert [j.result(1) for j in jobs] == [i + 1 for i in range(30)]
    assert f"supervising {cpus} worker processes" in log_of(sup)
    assert log_of(sup).count("its work is done, not replaced") == cpus


def test_each_worker_process_serves_metrics_on_its_own_port(app, spawn_worker):
    port = free_ports(2)
    sup = spawn_worker("-p", "2", "--metrics-port", str(port), "-c", "3")
    wait_until(lambda: len(registered(app)) == 2, "two registered workers")
    ids = set()
    for each in (port, port + 1):
        text = httpx.get(f"http://127.0.0.1:{each}/metrics", timeout=PATIENCE).text
        (line,) = [x for x in text.splitlines() if x.startswith("tarefa_worker_concurrency{")]
        assert line.endswith(" 3.0")
        ids.add(re.search(r'worker="([^"]+)"', line).group(1))
    assert {int(i.split(":")[1]) for i in ids} == registered(app)  # one each
    assert stop(sup) == 0, log_of(sup)


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive ports free now."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        try:
            for port in range(first, first + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first
    raise AssertionError("no free ports")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["-p", "0"], "'0' is not a number of processes"),
        (["-p", "-1"], "'-1' is not a number of processes"),
        (["-p", "abc"], "'abc' is not a number of processes"),
        (["--max-jobs-per-process", "0"], "Invalid value for '--max-jobs-per-process'"),
        (["-p", "2", "-q", "bad queue"], "invalid queue name"),
        (["-p", "2", "--metrics-port", "65535"], "takes the ports up to 65536"),
    ],
)
def test_bad_input_is_a_usage_error_and_starts_nothing(app, args, says):
    out = tarefa("worker", "tests.tasks:app", *args)
    assert out.returncode == 2, out.stderr
    assert says in out.stderr
    assert "supervising" not in out.stderr
    assert registered(app) == set()


def test_a_taken_metrics_port_is_a_usage_error_before_any_fork(app):
    port = free_ports(2)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port + 1))
        taken.listen()
        out = tarefa("worker", "tests.tasks:app", "-p", "2", "--metrics-port", str(port))
    assert out.returncode == 2, out.stderr
    assert f"cannot serve metrics on 127.0.0.1:{port + 1}" in out.stderr
    assert "supervising" not in out.stderr
