"""Scaling out: producers and worker processes, on one Redis and on a Redis Cluster.

Run from the repository root:

    .venv/bin/python bench/scale.py              # 3 runs, 20,000 jobs per worker row
    .venv/bin/python bench/scale.py --quick      # smoke check: 1 run, 3,000 jobs
    .venv/bin/python bench/scale.py --processes 1 2 4 --producers 1 2 4

It starts its own servers on free ports (no persistence): a redis-server, and
a Redis Cluster of 3 masters (no replicas: a replica costs its master CPU
that a throughput figure should not include). Each setup serves the same six
queues; on the cluster they fall two to a master. For each setup it measures:

- the PING loop of one client (the round-trip floor every rate is held to);
- N producer processes, each enqueueing one job at a time to the six queues
  in turn: jobs/s of all of them together;
- ``tarefa worker -p N --burst`` (N worker processes, each with concurrency
  50) draining the queues' no-op jobs: jobs/s from the first job's start to the
  last one's end, as Redis's clock recorded them;
- the Redis CPU each job cost, enqueue and run (INFO cpu, every master, over
  the producer and worker rows), and the capacity it implies: jobs/s that
  one Redis core (one master) could carry if nothing else limited it.

Reading the table: "x" is the median over the runs of a rate divided by the
same run's PING loop rate. A machine with fewer cores than the processes
asked for (and than the Redis servers that run beside them) limits the
rates before tarefa or Redis does: the check lines say when.

Progress goes to stderr; the table and the notes go to stdout.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.crc import key_slot
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as bench/scale.py: bench and tests importable

from bench.core import log_problems, measure_ping, progress  # noqa: E402
from tarefa import App  # noqa: E402
from tests.cluster import SLOTS, Cluster  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

QUEUES = 6  # on the cluster, two per master
MASTERS = 3
CONCURRENCY = 50
BATCH = 1000
NOOP = "bench.core_tasks:noop"  # async, does nothing


@dataclass
class Setup:
    """One Redis (or cluster) under test: its URL, its masters' clients, and
    an App on it."""

    name: str
    url: str
    masters: list[redis.Redis]
    queues: list[str]

    @property
    def app(self) -> App:
        return App(self.url)

    idle_cpu: float = 0.0  # CPU seconds per second its masters use doing nothing

    def cpu_seconds(self) -> float:
        """CPU the Redis servers have used since they started (INFO cpu), all masters."""
        total = 0.0
        for client in self.masters:
            cpu = client.info("cpu")
            total += cpu["used_cpu_user"] + cpu["used_cpu_sys"]
        return total

    def measure_idle(self, seconds: float = 2.0) -> None:
        """What the servers spend when no client calls (a cluster's nodes ping
        each other, every server runs its timers): taken out of the jobs' CPU."""
        before, start = self.cpu_seconds(), time.perf_counter()
        time.sleep(seconds)
        self.idle_cpu = (self.cpu_seconds() - before) / (time.perf_counter() - start)

    @contextmanager
    def cpu(self, spent: list[float]) -> Iterator[None]:
        """Appends to ``spent`` the CPU seconds the servers used for the block's
        calls (beyond what they use idle)."""
        before, start = self.cpu_seconds(), time.perf_counter()
        yield
        idle = self.idle_cpu * (time.perf_counter() - start)
        spent.append(max(0.0, self.cpu_seconds() - before - idle))

    def flush(self) -> None:
        for client in self.masters:
            client.flushall()


def queues_for(masters: int) -> list[str]:
    """``QUEUES`` queue names whose slots fall evenly on ``masters`` masters
    that share the slots evenly (as tests/cluster.py gives them out)."""
    names: list[str] = []
    taken = [0] * masters
    i = 0
    while len(names) < QUEUES:
        name = f"scale{i}"
        i += 1
        owner = key_slot(f"tarefa:{{{name}}}:ready".encode()) * masters // SLOTS
        if taken[owner] < QUEUES // masters:
            taken[owner] += 1
            names.append(name)
    return names


# -- producers ------------------------------------------------------------------


def _produce(url: str, queues: list[str], seconds: float, counts) -> None:
    """One producer process: enqueue one job at a time, queues in turn."""
    app = App(url)
    handles = [app.by_name(NOOP, queue=q) for q in queues]
    handles[0].enqueue(0)  # connect before the clock starts
    n, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        handles[n % len(handles)].enqueue(n)
        n += 1
    counts.put(n / seconds)


def measure_producers(setup: Setup, processes: int, seconds: float) -> float:
    """Jobs/s of ``processes`` producer processes enqueueing at once."""
    context = multiprocessing.get_context("spawn")  # no Redis connection crosses a fork
    counts = context.Queue()
    procs = [
        context.Process(target=_produce, args=(setup.url, setup.queues, seconds, counts))
        for _ in range(processes)
    ]
    for proc in procs:
        proc.start()
    rates = [counts.get(timeout=seconds + 120) for _ in procs]
    for proc in procs:
        proc.join(30)
    return sum(rates)


# -- workers --------------------------------------------------------------------


def fill(setup: Setup, jobs_per_queue: int) -> dict[str, list[str]]:
    """``jobs_per_queue`` no-op jobs in each queue; their ids by queue."""
    app = setup.app
    ids: dict[str, list[str]] = {}
    for queue in setup.queues:
        task = app.by_name(NOOP, queue=queue)
        ids[queue] = []
        for first in range(0, jobs_per_queue, BATCH):
            count = min(BATCH, jobs_per_queue - first)
            ids[queue] += [job.id for job in task.enqueue_many([(i,) for i in range(count)])]
    app.close()
    return ids


def measure_workers(
    setup: Setup, processes: int, ids: dict[str, list[str]], logs: Path
) -> tuple[float, list[str]]:
    """Jobs/s of ``processes`` burst workers draining the queues: from the
    first job's start to the last one's end (Redis's clock); and any problem."""
    env = dict(os.environ, TAREFA_URL=setup.url, PYTHONPATH=str(ROOT))
    queue_args = [arg for q in setup.queues for arg in ("-q", q)]
    command = [sys.executable, "-m", "tarefa", "worker", "bench.core_tasks:app", *queue_args,
               "-c", str(CONCURRENCY), "-p", str(processes), "--burst"]  # fmt: skip
    path = logs / f"{setup.name}-{processes}.log"
    with open(path, "wb") as log:
        code = subprocess.Popen(command, cwd=ROOT, env=env, stderr=log).wait(600)
    problems = [f"tarefa worker -p {processes} exited with code {code}"] if code else []
    problems += log_problems(path)
    client = redis.Redis.from_url(setup.url) if setup.name == "single" else _cluster(setup)
    started, finished = [], []
    for queue, job_ids in ids.items():
        pipe = client.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hmget(f"tarefa:{{{queue}}}:job:{job_id}", "started_at", "finished_at")
        for start, end in pipe.execute():
            if start is not None and end is not None:
                started.append(int(start))
                finished.append(int(end))
    client.close()
    total = sum(len(v) for v in ids.values())
    if len(finished) < total:
        problems.append(f"only {len(finished)} of {total} jobs finished")
    span = (max(finished) - min(started)) / 1000 if finished else 0
    return (len(finished) / span if span > 0 else float("nan")), problems


def _cluster(setup: Setup) -> redis.RedisCluster:
    host, port = setup.url.removeprefix("redis+cluster://").split(",")[0].split(":")
    return redis.RedisCluster(host=host, port=int(port))


# -- one run --------------------------------------------------------------------


def one_run(setup: Setup, args, logs: Path, notes: list[str]) -> dict[str, float]:
    result: dict[str, float] = {}
    ping_client = setup.masters[0]
    result["ping"] = measure_ping(ping_client, args.seconds)
    enqueued, ran = 0, 0
    enqueue_cpu: list[float] = []  # Redis CPU seconds of each row
    run_cpu: list[float] = []
    for n in args.producers:
        setup.flush()
        with setup.cpu(enqueue_cpu):
            rate = measure_producers(setup, n, args.seconds)
        enqueued += round(rate * args.seconds)
        result[f"producers_{n}"] = rate
        progress(f"  {setup.name}: {n} producer(s): {rate:,.0f} jobs/s")
    for n in args.processes:
        setup.flush()
        ids = fill(setup, args.jobs // len(setup.queues))
        with setup.cpu(run_cpu):
            rate, problems = measure_workers(setup, n, ids, logs)
        ran += sum(len(v) for v in ids.values())
        result[f"workers_{n}"] = rate
        notes += [f"{setup.name}, {n} worker process(es): {p}" for p in problems]
        progress(f"  {setup.name}: {n} worker process(es): {rate:,.0f} jobs/s")
    # A job's Redis CPU: its enqueue's share of the producer rows' CPU, plus
    # its run's share of the worker rows' (fetch, outcome, heartbeats...).
    result["cpu_us"] = (sum(enqueue_cpu) / enqueued + sum(run_cpu) / ran) * 1e6
    return result


def start_setups(directory: Path, names: list[str]) -> tuple[list[Setup], list]:
    setups, servers = [], []
    if "single" in names:
        server = RedisServer(directory / "single").start()
        servers.append(server)
        setups.append(Setup("single", server.url, [server.client()], queues_for(1)))
    if "cluster" in names:
        progress("forming a cluster of 3 masters")
        cluster = Cluster(directory / "cluster", masters=MASTERS, replicas=0)
        servers.append(cluster)
        clients = [node.client() for node in cluster.masters]
        setups.append(Setup("cluster", cluster.url, clients, queues_for(MASTERS)))
    return setups, servers


def build_table(setup: Setup, runs: list[dict[str, float]], args) -> Table:
    table = Table(title=f"tarefa scaling: {setup.name} ({len(setup.masters)} master(s))")
    for column in ("metric", "unit", *(f"run {i + 1}" for i in range(len(runs))), "median", "x"):
        table.add_column(column, justify="left" if column in ("metric", "unit") else "right")

    def row(key: str, label: str, unit: str, x: bool = True) -> None:
        values = [r[key] for r in runs]
        ratio = statistics.median(r[key] / r["ping"] for r in runs) if x else None
        cells = [f"{v:,.0f}" if unit != "µs" else f"{v:,.1f}" for v in values]
        median = statistics.median(values)
        shown = f"{median:,.1f}" if unit == "µs" else f"{median:,.0f}"
        table.add_row(label, unit, *cells, shown, f"{ratio:.2f}x" if x else "")

    row("ping", "PING loop, one client", "/s")
    for n in args.producers:
        row(f"producers_{n}", f"enqueue, {n} producer process(es)", "jobs/s")
    for n in args.processes:
        row(f"workers_{n}", f"run no-op jobs, {n} worker process(es)", "jobs/s")
    row("cpu_us", "Redis CPU per job (enqueue + run), all masters", "µs", x=False)
    capacity = 1e6 / statistics.median(r["cpu_us"] for r in runs)
    blank = [""] * len(runs)
    table.add_row("capacity: jobs/s per Redis core", "jobs/s", *blank, f"{capacity:,.0f}", "")
    if len(setup.masters) > 1:  # a queue's jobs cost its own master, alone
        total = capacity * len(setup.masters)
        table.add_row(f"capacity: {len(setup.masters)} masters, one core each", "jobs/s",
                      *blank, f"{total:,.0f}", "")  # fmt: skip
    return table


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=None, help="runs (default 3; --quick: 1)")
    parser.add_argument("--jobs", type=int, default=None, help="jobs per worker row (20000)")
    parser.add_argument("--seconds", type=float, default=None, help="producer loop (3 s)")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--producers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--setups", nargs="+", default=["single", "cluster"],
                        choices=["single", "cluster"])  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="small N, one run: a smoke check")
    args = parser.parse_args(argv)
    args.runs = args.runs or (1 if args.quick else 3)
    args.jobs = args.jobs or (3000 if args.quick else 20000)
    args.seconds = args.seconds or (1.0 if args.quick else 3.0)
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="tarefa-scale-"))
    setups, servers = start_setups(tmp, args.setups)
    for setup in setups:
        setup.measure_idle()
    started = time.perf_counter()
    console = Console() if sys.stdout.isatty() else Console(width=120)
    try:
        notes: list[str] = []
        results: dict[str, list[dict[str, float]]] = {s.name: [] for s in setups}
        for i in range(args.runs):
            for setup in setups:  # alternated: the machine's mood touches both alike
                progress(f"run {i + 1}/{args.runs}: {setup.name}")
                results[setup.name].append(one_run(setup, args, tmp, notes))
        for setup in setups:
            console.print(build_table(setup, results[setup.name], args))
        cores = os.cpu_count() or 1
        console.print(
            f"{args.runs} run(s); {args.jobs:,} jobs per worker row over "
            f"{QUEUES} queues, concurrency {CONCURRENCY} per process; "
            f"x: the median of rate / the same run's PING loop rate.",
            markup=False, highlight=False,
        )  # fmt: skip
        busiest = max(max(args.processes), max(args.producers)) + len(setups[-1].masters)
        if busiest > cores:
            console.print(
                f"note: this machine has {cores} cores; the largest rows run up to "
                f"{busiest} busy processes (clients and Redis servers), so from there on "
                "the machine, not tarefa or Redis, sets the rate.",
                markup=False, highlight=False,
            )  # fmt: skip
        for note in notes:
            console.print(f"note: {note}", markup=False, highlight=False)
        progress(f"done in {time.perf_counter() - started:.0f} s")
    finally:
        for setup in setups:
            for client in setup.masters:
                client.close()
        for server in servers:
            server.close() if isinstance(server, Cluster) else server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
