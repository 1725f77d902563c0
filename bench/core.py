"""Core benchmark of tarefa: producer rates, worker throughput, start latency.

Run from the repository root:

    .venv/bin/python bench/core.py              # 3 runs, 20,000 jobs per worker metric
    .venv/bin/python bench/core.py --quick      # smoke check: 1 run, 2,000 jobs, short loops
    .venv/bin/python bench/core.py --runs 5 --jobs 50000
    .venv/bin/python bench/core.py --producers  # the producer rows only (no workers)

It starts its own redis-server on a free port of 127.0.0.1 (no persistence), runs
every measurement against it, and stops it at the end. Workers run as separate
processes (``python -m tarefa worker bench.core_tasks:app ...``).

Reading the table: absolute rates differ about 2x between machines, so compare
only the "x" column. For a rate it is the median, over the runs, of the rate
divided by the rate of its reference in the same run ("vs"): a plain redis-py
PING loop (the round-trip floor: 1.00x means "as fast as one PING per job"),
sync for sync code and asyncio for asyncio code, whose clients cost different
amounts of Python per call. For a latency it is the median expressed in PING
round trips (latency x PING rate). The check lines under the table compare those ratios to
the floors the project aims for; they are printed, never asserted. The "Redis
CPU" rows are the server's time per job (INFO commandstats): the cost of the
scripts themselves, steadier than rates on a noisy machine, and what limits
throughput when many producers or workers share one Redis.

Progress goes to stderr; the table and the checks go to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
import redis.asyncio
from rich.console import Console
from rich.table import Table

from tarefa.store.embedded import redis_server_binary

ROOT = Path(__file__).resolve().parent.parent  # /work/main: bench.core_tasks is importable
BATCH = 1000  # jobs per enqueue_many call
GATHERED = 100  # aenqueues awaited together, as a busy web app's requests make them
CONCURRENCY = 50
LATENCY_JOBS = 400
LATENCY_RATE = 200.0  # jobs/s while measuring start latency
LATENCY_WARMUP = 10  # jobs run (and discarded) before the latency is measured


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the bench's own redis-server -------------------------------------------------


class BenchServer:
    """A throw-away redis-server on a free TCP port, without persistence."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = 0
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = redis_server_binary()
        for _ in range(3):  # another process may grab the free port first
            self.port = free_port()
            args = [
                binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
                "--logfile", str(self.directory / "redis.log"),
            ]  # fmt: skip
            self.process = subprocess.Popen(
                args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            if self._wait_ready():
                progress(f"redis-server {binary} on port {self.port}")
                return
        raise RuntimeError(f"redis-server did not start; see {self.directory / 'redis.log'}")

    def _wait_ready(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    return False
                try:
                    if client.ping():
                        return True
                except redis.ConnectionError:
                    time.sleep(0.02)
            return False
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            redis.Redis(host="127.0.0.1", port=self.port).shutdown(nosave=True)
        except redis.RedisError:
            pass  # the server closes the connection as it exits
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# -- worker subprocesses ----------------------------------------------------------


class Workers:
    """Starts worker processes against the bench server; logs go to files."""

    def __init__(self, url: str, log_dir: Path):
        self.env = dict(os.environ, TAREFA_URL=url)
        self.env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
        )
        self.log_dir = log_dir
        self.live: list[subprocess.Popen] = []
        self.count = 0

    def start(self, queue: str, *, burst: bool) -> tuple[subprocess.Popen, Path]:
        self.count += 1
        log_path = self.log_dir / f"worker-{self.count}-{queue}.log"
        cmd = [sys.executable, "-m", "tarefa", "worker", "bench.core_tasks:app",
               "-q", queue, "-c", str(CONCURRENCY)] + (["--burst"] if burst else [])  # fmt: skip
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=log_file
            )
        self.live.append(proc)
        return proc, log_path

    def stop(self, proc: subprocess.Popen, timeout: float = 30.0) -> int:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()
        finally:
            if proc in self.live:
                self.live.remove(proc)

    def stop_all(self) -> None:
        for proc in list(self.live):
            self.stop(proc, timeout=5)


def log_problems(path: Path, limit: int = 5) -> list[str]:
    """The WARNING and ERROR records of a worker's log, each with the last line
    of its traceback (the exception) when it has one."""
    records: list[list[str]] = []
    for line in path.read_text(errors="replace").splitlines():
        if line[:4].isdigit() or not records:  # "2026-01-01 12:00:00,000 LEVEL ..."
            records.append([line])
        else:
            records[-1].append(line)
    bad = []
    for record in records:
        if " WARNING " in record[0] or " ERROR " in record[0] or "Traceback" in record[0]:
            bad.append(record[0] + (f" -> {record[-1].strip()}" if len(record) > 1 else ""))
    return bad[:limit] + ([f"... and {len(bad) - limit} more"] if len(bad) > limit else [])


# -- the metrics ------------------------------------------------------------------


def redis_cpu_us(client: redis.Redis) -> float:
    """Microseconds Redis spent running commands since the last CONFIG RESETSTAT
    (INFO commandstats): the server's side of a metric, which the client's and
    the machine's noise barely touch. It is what limits throughput once many
    producers or workers share one Redis."""
    stats = client.info("commandstats")
    skip = ("cmdstat_info", "cmdstat_config", "cmdstat_ping")  # (the PING loop's)
    return sum(v["usec"] for k, v in stats.items() if k not in skip)


def measure_ping(client: redis.Redis, seconds: float) -> float:
    """PING round trips per second: the floor every other metric is compared to."""
    client.ping()
    n, start = 0, time.perf_counter()
    end = start + seconds
    while True:
        client.ping()
        n += 1
        if time.perf_counter() >= end:
            break
    return n / (time.perf_counter() - start)


SLICE = 0.05  # seconds of one metric before the next takes its turn (interleaved)


class Interleaved:
    """Rates of several loops measured in turns of SLICE seconds, over the
    same stretch of time: a noisy machine (shared cores) slows each alike, so
    their ratios hold where rates measured one after the other drift apart."""

    def __init__(self, names: list[str]):
        self.calls = dict.fromkeys(names, 0)
        self.spent = dict.fromkeys(names, 0.0)

    def add(self, name: str, calls: int, began: float) -> None:
        self.calls[name] += calls
        self.spent[name] += time.perf_counter() - began

    def rates(self) -> dict[str, float]:
        return {name: self.calls[name] / self.spent[name] for name in self.calls}


def measure_sync(client: redis.Redis, seconds: float) -> dict[str, float]:
    """The PING loop and single ``task.enqueue`` calls from sync code, in
    turns: calls/s and jobs/s."""
    from bench.core_tasks import noop

    noop.enqueue(-1)  # warm-up: connection, queue registry, script cache
    client.ping()
    turns = Interleaved(["ping", "enqueue"])
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for name, call in (("ping", lambda _: client.ping()), ("enqueue", noop.enqueue)):
            n, began = 0, time.perf_counter()
            while time.perf_counter() - began < SLICE:
                call(n)
                n += 1
            turns.add(name, n, began)
    return turns.rates()


def measure_async(url: str, seconds: float) -> dict[str, float]:
    """In one event loop, in turns: the PING loop of redis-py's asyncio client,
    ``await task.aenqueue`` one at a time, and GATHERED of them awaited
    together (a busy web app's concurrent requests)."""
    from bench.core_tasks import app, noop

    async def gathered(n: int) -> None:
        await asyncio.gather(*(noop.aenqueue(n + i) for i in range(GATHERED)))

    async def main() -> dict[str, float]:
        client = redis.asyncio.Redis.from_url(url)
        await client.ping()
        await noop.aenqueue(-1)  # warm-up: this loop's connection
        calls = {"aping": (lambda _: client.ping(), 1), "aenqueue": (noop.aenqueue, 1)}
        calls["gathered"] = (gathered, GATHERED)
        turns = Interleaved(list(calls))
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            for name, (call, width) in calls.items():
                n, began = 0, time.perf_counter()
                while time.perf_counter() - began < SLICE:
                    await call(n)
                    n += width
                turns.add(name, n, began)
        await client.aclose()
        await app.store.aclose()  # this loop's connections die with it
        return turns.rates()

    return asyncio.run(main())


def measure_enqueue_many(seconds: float) -> float:
    """``task.enqueue_many`` in batches of BATCH, jobs/s."""
    from bench.core_tasks import noop

    calls = [(i,) for i in range(BATCH)]
    noop.enqueue_many(calls[:10])  # warm-up
    n, start = 0, time.perf_counter()
    end = start + seconds
    while True:
        noop.enqueue_many(calls)
        n += BATCH
        if time.perf_counter() >= end:
            break
    return n / (time.perf_counter() - start)


@dataclass
class WorkerResult:
    rate: float  # jobs / (last finished_at - first started_at), Redis clock
    wall: float  # seconds the worker process ran, start to exit
    redis_us: float  # Redis CPU per job (µs): every call the worker made
    problems: list[str] = field(default_factory=list)


def measure_worker(task, n: int, client: redis.Redis, workers: Workers) -> WorkerResult:
    """Enqueue ``n`` jobs of ``task``, drain them with one --burst worker; jobs/s
    from the first job's start to the last job's finish, as Redis recorded them."""
    queue = task.options.queue
    ids: list[str] = []
    for first in range(0, n, BATCH):
        jobs = task.enqueue_many([(i,) for i in range(first, min(first + BATCH, n))])
        ids.extend(job.id for job in jobs)
    progress(f"  {n} jobs on queue {queue}; starting a --burst worker")
    client.config_resetstat()
    start = time.perf_counter()
    proc, log_path = workers.start(queue, burst=True)
    try:
        code = proc.wait(timeout=max(120.0, n / 100))
    except subprocess.TimeoutExpired:
        code = workers.stop(proc)
        problems = [f"worker on {queue} did not exit within its timeout (killed)"]
    else:
        workers.live.remove(proc)
        problems = []
    wall = time.perf_counter() - start
    redis_us = redis_cpu_us(client) / n
    if code != 0:
        problems.append(f"worker on {queue} exited with code {code}")
    problems += [f"worker log ({queue}): {line}" for line in log_problems(log_path)]

    pipe = client.pipeline(transaction=False)
    for job_id in ids:
        pipe.hmget(f"tarefa:{{{queue}}}:job:{job_id}", "started_at", "finished_at")
    stamps = pipe.execute()
    started = [int(s) for s, _ in stamps if s is not None]
    finished = [int(f) for _, f in stamps if f is not None]
    if len(finished) < n:
        counts = task.app.queue(queue).counts()
        problems.append(f"{queue}: only {len(finished)} of {n} jobs finished; counts {counts}")
    if not started or not finished:
        return WorkerResult(math.nan, wall, redis_us, problems)
    span = (max(finished) - min(started)) / 1000
    rate = len(finished) / span if span > 0 else math.nan
    return WorkerResult(rate, wall, redis_us, problems)


@dataclass
class LatencyResult:
    p50_ms: float
    p99_ms: float
    problems: list[str] = field(default_factory=list)


def _wait_registered(client: redis.Redis, proc: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the latency worker exited with code {proc.returncode}")
        ids = [w.decode() for w in client.smembers("tarefa:workers")]
        if any(client.exists(f"tarefa:worker:{w}") for w in ids):
            return
        time.sleep(0.02)
    raise RuntimeError("the latency worker did not register in time")


def _wait_for_stamps(client: redis.Redis, count: int, timeout: float = 30) -> None:
    from bench.core_tasks import LATENCY_KEY

    deadline = time.monotonic() + timeout
    while client.llen(LATENCY_KEY) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {client.llen(LATENCY_KEY)} of {count} latency jobs ran")
        time.sleep(0.01)


def measure_latency(n: int, client: redis.Redis, workers: Workers) -> LatencyResult:
    """Enqueue-to-start latency on an idle worker: ``n`` jobs at LATENCY_RATE/s,
    each recording (time at start) - (time just before its enqueue)."""
    from bench.core_tasks import LATENCY_KEY, stamp

    proc, log_path = workers.start("latency", burst=False)
    try:
        _wait_registered(client, proc)
        for _ in range(LATENCY_WARMUP):  # first jobs: connections, script cache, threads
            stamp.enqueue(time.time())
            time.sleep(1 / LATENCY_RATE)
        _wait_for_stamps(client, LATENCY_WARMUP)
        client.delete(LATENCY_KEY)
        time.sleep(0.1)  # let the worker go idle again
        progress(f"  worker ready; {n} jobs at {LATENCY_RATE:.0f}/s")
        interval, next_at = 1 / LATENCY_RATE, time.perf_counter()
        for _ in range(n):
            stamp.enqueue(time.time())
            next_at += interval
            pause = next_at - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        _wait_for_stamps(client, n)
    finally:
        code = workers.stop(proc)
    samples = sorted(float(x) * 1000 for x in client.lrange(LATENCY_KEY, 0, -1))
    problems = [f"worker log (latency): {line}" for line in log_problems(log_path)]
    if code != 0:
        problems.append(f"latency worker exited with code {code} after SIGTERM")
    p99 = samples[max(0, math.ceil(0.99 * len(samples)) - 1)]  # nearest rank
    return LatencyResult(statistics.median(samples), p99, problems)


# -- runs and the table ---------------------------------------------------------

_WAKE_WAITER = """
import sys, time
import redis
client = redis.Redis(port=int(sys.argv[1]))
client.set("bench:waker:ready", 1)
samples = []
while len(samples) < int(sys.argv[2]):
    _, member, _ = client.bzpopmin(["bench:waker"], 30)
    samples.append(time.time() - float(member))
client.rpush("bench:waker:samples", *samples)
"""


def measure_wake_floor(n: int, client: redis.Redis) -> float:
    """The start latency's floor on this machine, in ms (p50): one process
    ZADDs a timestamp, at LATENCY_RATE/s, to a key another one waits on with
    BZPOPMIN, both plain redis-py. On a VM, waking an idle process costs far
    more than a round trip between busy ones, which the PING loop measures."""
    client.delete("bench:waker", "bench:waker:ready", "bench:waker:samples")
    waiter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _WAKE_WAITER,
            str(client.connection_pool.connection_kwargs["port"]),
            str(n),
        ]
    )
    try:
        deadline = time.monotonic() + 20
        while not client.exists("bench:waker:ready"):
            if waiter.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the wake-up floor's waiter did not start")
            time.sleep(0.01)
        interval, next_at = 1 / LATENCY_RATE, time.perf_counter()
        for _ in range(n):
            client.zadd("bench:waker", {repr(time.time()): 0})
            next_at += interval
            pause = next_at - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        waiter.wait(30)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()
    samples = [float(x) * 1000 for x in client.lrange("bench:waker:samples", 0, -1)]
    return statistics.median(samples)


# key, label, unit, kind: "rate" | "latency" (PING RTTs) | "context", and for a
# rate the metric it is held against in the same run.
ROWS = [
    ("ping", "PING loop (redis-py)", "calls/s", "rate", "ping"),
    ("aping", "PING loop (redis-py asyncio)", "calls/s", "rate", "ping"),
    ("ping_end", "  PING again, end of run", "calls/s", "rate", "ping"),
    ("enqueue", "enqueue", "jobs/s", "rate", "ping"),
    ("enqueue_redis_us", "  Redis CPU per enqueue", "µs", "context", ""),
    ("aenqueue", "aenqueue", "jobs/s", "rate", "aping"),
    ("gathered", f"aenqueue, {GATHERED} gathered", "jobs/s", "rate", "aping"),
    ("gathered_x", f"  {GATHERED} gathered / one at a time", "x", "context", ""),
    ("enqueue_many", f"enqueue_many (batch {BATCH})", "jobs/s", "rate", "ping"),
    ("worker_async", "worker async no-op", "jobs/s", "rate", "ping"),
    ("worker_async_wall", "  worker process wall time", "s", "context", ""),
    ("worker_async_redis_us", "  Redis CPU per job", "µs", "context", ""),
    ("worker_sync", "worker sync no-op", "jobs/s", "rate", "ping"),
    ("worker_sync_wall", "  worker process wall time", "s", "context", ""),
    ("worker_sync_redis_us", "  Redis CPU per job", "µs", "context", ""),
    ("latency_p50", "start latency p50", "ms", "latency", "ping"),
    ("latency_p99", "start latency p99", "ms", "latency", "ping"),
    ("wake_floor", "  floor: BZPOPMIN woken by a ZADD, p50", "ms", "latency", "ping"),
]
PRODUCER_ROWS = {"ping", "aping", "ping_end", "enqueue", "enqueue_redis_us", "aenqueue",
                 "gathered", "gathered_x", "enqueue_many"}  # fmt: skip
REFERENCE_NAMES = {"ping": "PING", "aping": "async PING"}


def one_run(
    args, client: redis.Redis, url: str, workers: Workers, notes: list[str]
) -> dict[str, float]:
    r: dict[str, float] = {}
    client.flushall()
    client.config_resetstat()
    r.update(measure_sync(client, args.seconds))
    r["enqueue_redis_us"] = redis_cpu_us(client) / client.llen("tarefa:{bench}:ready")
    progress(
        f"  PING {r['ping']:,.0f}/s, enqueue {r['enqueue']:,.0f}/s, "
        f"Redis CPU {r['enqueue_redis_us']:.1f} µs/job"
    )
    client.flushall()
    r.update(measure_async(url, args.seconds))
    r["gathered_x"] = r["gathered"] / r["aenqueue"]
    progress(
        f"  asyncio PING {r['aping']:,.0f}/s, aenqueue {r['aenqueue']:,.0f}/s, "
        f"{GATHERED} gathered {r['gathered']:,.0f}/s"
    )
    client.flushall()
    r["enqueue_many"] = measure_enqueue_many(args.seconds)
    progress(f"  enqueue_many {r['enqueue_many']:,.0f}/s")
    if not args.producers:
        _worker_metrics(args, client, workers, notes, r)
    client.flushall()
    # A second PING loop: how far it drifts from the first shows how noisy the run was.
    r["ping_end"] = measure_ping(client, args.seconds)
    progress(f"  PING again {r['ping_end']:,.0f}/s")
    return r


def _worker_metrics(args, client: redis.Redis, workers: Workers, notes: list, r: dict) -> None:
    from bench.core_tasks import noop, noop_sync

    for key, task in (("worker_async", noop), ("worker_sync", noop_sync)):
        client.flushall()
        result = measure_worker(task, args.jobs, client, workers)
        r[key], r[key + "_wall"], r[key + "_redis_us"] = result.rate, result.wall, result.redis_us
        notes += result.problems
        progress(f"  {key} {result.rate:,.0f}/s (process wall {result.wall:.2f} s)")
    client.flushall()
    latency = measure_latency(args.latency_jobs, client, workers)
    r["latency_p50"], r["latency_p99"] = latency.p50_ms, latency.p99_ms
    notes += latency.problems
    progress(f"  latency p50 {latency.p50_ms:.2f} ms, p99 {latency.p99_ms:.2f} ms")
    r["wake_floor"] = measure_wake_floor(args.latency_jobs, client)
    progress(f"  wake-up floor p50 {r['wake_floor']:.2f} ms")


def _fmt(value: float, unit: str) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:,.0f}" if unit.endswith("/s") else f"{value:,.2f}"


def ratio(runs: list[dict[str, float]], key: str, ref: str, kind: str) -> float:
    """The median over the runs of a metric held against its reference in the
    same run: rate / reference rate, or latency in reference round trips."""
    if kind == "rate":
        return statistics.median(r[key] / r[ref] for r in runs)
    return statistics.median(r[key] / 1000 * r[ref] for r in runs)


def build_table(runs: list[dict[str, float]], medians: dict[str, float], rows: list) -> Table:
    table = Table(title="tarefa core benchmark")
    table.add_column("metric")
    table.add_column("unit")
    for i in range(len(runs)):
        table.add_column(f"run {i + 1}", justify="right")
    table.add_column("median", justify="right", style="bold")
    table.add_column("x", justify="right")
    table.add_column("vs")
    for key, label, unit, kind, ref in rows:
        shown = ""
        if kind == "rate":
            shown = f"{ratio(runs, key, ref, kind):.2f}x"
        elif kind == "latency":
            shown = f"{ratio(runs, key, ref, kind):.1f} RTT"
        cells = (_fmt(r[key], unit) for r in runs)
        table.add_row(
            label, unit, *cells, _fmt(medians[key], unit), shown, REFERENCE_NAMES.get(ref, "")
        )
    return table


def checks(runs: list[dict[str, float]], producers_only: bool) -> list[str]:
    def verdict(ok: bool) -> str:
        return "ok   " if ok else "BELOW"

    enqueue = ratio(runs, "enqueue", "ping", "rate")
    aenqueue = ratio(runs, "aenqueue", "aping", "rate")
    gathered = statistics.median(r["gathered_x"] for r in runs)
    lines = [
        f"{verdict(enqueue >= 0.8)} enqueue >= 0.8x PING: {enqueue:.2f}x",
        f"{verdict(aenqueue >= 0.8)} aenqueue >= 0.8x asyncio PING: {aenqueue:.2f}x",
        f"{verdict(gathered >= 3)} {GATHERED} gathered aenqueues >= 3x one at a time: "
        f"{gathered:.2f}x",
    ]
    if producers_only:
        return lines
    worker = ratio(runs, "worker_async", "ping", "rate")
    p50_rtt = ratio(runs, "latency_p50", "ping", "latency")
    floor_rtt = ratio(runs, "wake_floor", "ping", "latency")
    return lines + [
        f"{verdict(worker >= 0.4)} worker async no-op >= 0.4x PING: {worker:.2f}x",
        f"{verdict(p50_rtt <= 4)} start latency p50 <= 4 PING round trips: {p50_rtt:.2f} "
        f"(the wake-up floor: {floor_rtt:.2f})",
    ]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=None, help="runs (default 3; --quick: 1)")
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="jobs per worker metric (default 20000; --quick: 2000)",
    )
    parser.add_argument(
        "--seconds", type=float, default=None, help="length of each producer loop (default 2)"
    )
    parser.add_argument("--quick", action="store_true", help="small N, one run: a smoke check")
    parser.add_argument(
        "--producers", action="store_true", help="the producer metrics only (no workers)"
    )
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the worker and redis logs (path on stderr)"
    )
    args = parser.parse_args(argv)
    quick = args.quick
    args.runs = args.runs or (1 if quick else 3)
    args.jobs = args.jobs or (2000 if quick else 20000)
    args.seconds = args.seconds or (0.5 if quick else 2.0)
    args.latency_jobs = 100 if quick else LATENCY_JOBS
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # run as bench/core.py: make `bench` importable
    tmp = Path(tempfile.mkdtemp(prefix="tarefa-bench-"))
    server = BenchServer(tmp)
    workers = None
    started = time.perf_counter()
    try:
        server.start()
        os.environ["TAREFA_URL"] = server.url  # before the App first talks to Redis
        from bench.core_tasks import app

        client = redis.Redis(host="127.0.0.1", port=server.port)
        workers = Workers(server.url, tmp)
        runs: list[dict[str, float]] = []
        notes: list[str] = []
        for i in range(args.runs):
            progress(f"run {i + 1}/{args.runs}")
            runs.append(one_run(args, client, server.url, workers, notes))
        rows = [row for row in ROWS if not args.producers or row[0] in PRODUCER_ROWS]
        medians = {key: statistics.median(r[key] for r in runs) for key, *_ in rows}
        console = Console() if sys.stdout.isatty() else Console(width=120)
        console.print(build_table(runs, medians, rows))
        legend = (
            f"{len(runs)} run(s); {args.jobs:,} jobs per worker metric, concurrency "
            f"{CONCURRENCY}; {args.latency_jobs} latency jobs at {LATENCY_RATE:.0f}/s.\n"
            "x: for rates, the median of rate / the same run's rate of 'vs'; for latencies, "
            "the median in PING round trips (latency x PING rate).\n"
        )
        console.print(legend, markup=False, highlight=False)
        for line in checks(runs, args.producers):
            console.print(line, markup=False, highlight=False)
        for note in notes:
            console.print(f"note: {note}", markup=False, highlight=False)
        progress(f"done in {time.perf_counter() - started:.0f} s")
        client.close()
        app.close()
    finally:
        if workers is not None:
            workers.stop_all()
        server.stop()
        if args.keep_logs:
            progress(f"logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
