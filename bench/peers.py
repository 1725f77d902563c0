r"""tarefa against its peers on one Redis: enqueue rate and one worker's no-op throughput.

Set up (a separate venv, so tarefa's own .venv is untouched) and run, from the
repository root (one command line):

    python3 -m venv .venv-peers && \
      .venv-peers/bin/pip install -e . -r bench/peers-requirements.txt && \
      .venv-peers/bin/python bench/peers.py

    .venv-peers/bin/python bench/peers.py --quick          # smoke run: 1 run, small N
    .venv-peers/bin/python bench/peers.py --only rq,arq    # a subset (tarefa's rows always run)

The peers: RQ, arq, SAQ, Dramatiq (Redis broker), Huey (RedisHuey), taskiq with
taskiq-redis (RedisStreamBroker + RedisAsyncResultBackend) and Celery (Redis as
broker and result backend). A peer that is not installed, or whose run fails,
gets a row that says why; the others still run. All of them, tarefa included,
run in the one venv, so they share one redis-py (arq pins redis<6: see
bench/peers-requirements.txt).

The script starts one redis-server on a free port of 127.0.0.1 (no
persistence) and, in each run and for each system in turn, measures:

- enqueue: single enqueue calls of the no-op job, back to back for --seconds,
  in a fresh child process per system (so no library's state leaks into
  another's, and no FLUSHALL leaves one with stale caches, like kombu's
  declared queues). Sync libraries call their sync enqueue; the asyncio-only
  ones (arq, SAQ, taskiq) await their async enqueue, one at a time, in one
  event loop. The notes say which call. No worker runs meanwhile.
- worker: N jobs are enqueued first (a child process, not timed), then ONE
  worker process of the library starts, with its usual concurrency knob set.
  The method, the same for every library: each no-op job counts itself in its
  worker process and goes to Redis once per 100 jobs (and on its first job),
  where a Lua script adds to ``peers:done:<system>`` and stores the Redis TIME
  of the first job and of the latest count (bench/peer_tasks/_common.py).
  The rate is (jobs - 1) / (last - first) on the Redis clock: worker start-up,
  imports and shut-down are left out for everyone alike, and the job stays a
  no-op (one round trip per 100 jobs). RQ's default worker forks a process per
  job, which cannot keep a count: there each job goes to Redis (one round
  trip more per job, beside RQ's own per-job Redis work and its fork; its
  SimpleWorker row, with the count kept in process, shows RQ without the
  fork). The harness polls the count and stops the
  worker (SIGTERM to its process group) once the N jobs are done, or --cap
  seconds after the first one (then the rate is over the jobs done so far,
  and a note says so). The slow systems get fewer jobs (see --jobs).
- PING: a redis-py PING loop, the round-trip floor. It runs in slices that
  alternate with the enqueue loop's slices (in the same child process), and
  just before and just after each worker run; the PING row is the median of
  all those loops. An enqueue rate's "x PING" is the median over runs of
  (rate / the PING interleaved with it): this machine's speed drifts by 2x
  within seconds (a shared VM), and pairing cancels most of that. A worker
  rate's "x PING" is its median / the PING row's median (a PING loop beside a
  running worker would slow it down). The notes give each system's range over
  the runs, and each run takes the systems in a rotated order, so a slow
  stretch of the machine does not always hit the same one.

Worker settings (one worker process each): tarefa ``-c 50`` (an async task on
its event loop; a second row runs a sync task in its thread pool of 50), RQ's
default Worker (forks a work horse per job, one job at a time) and its
SimpleWorker (no fork), arq ``max_jobs=50``, SAQ ``concurrency=50``, taskiq
``--workers 1 --max-async-tasks 50``, Dramatiq ``--processes 1 --threads T``,
Huey ``-k thread -w T``, Celery ``-P threads -c T`` (its thread pool; gevent
was tried and was far slower, see THREADS). T is each thread-pool peer's best of
8, 16 and 50 here (THREADS; --threads overrides). Dramatiq and taskiq run a
parent process that forks the one worker process. Every worker logs no line
per job, like tarefa by default (-v off): RQ ``-q``, arq at WARNING via
``--custom-log-dict``, Huey ``-q``, taskiq and Celery at WARNING; SAQ's CLI
logs at ERROR by default and Dramatiq logs no line per message at INFO.
Results, retries and acks/leases stay at each library's defaults; the notes say
what each keeps (Dramatiq keeps no result by default, Huey stores no None
result).

Workers' logs go to a temp dir (--keep-logs keeps it); every worker process
group and the redis-server are stopped at the end, also on errors. Progress goes
to stderr; the table goes to stdout.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # /work/main: bench.peer_tasks is importable
BIN = Path(sys.executable).parent  # the venv's console scripts (rq, arq, saq, ...)
CONCURRENCY = 50
START_TIMEOUT = 60.0  # seconds from a worker's start to its first job
CHILD_TIMEOUT = 300.0


# -- child mode: one library's producer side, in a fresh process -----------------


def child(argv: list[str]) -> None:
    """``peers.py --child MODULE enqueue SECONDS`` or ``... preload N VARIANT``:
    prints one JSON line with the result."""
    module_name, action, value, variant = argv[0], argv[1], argv[2], argv[3]
    module = importlib.import_module(module_name)
    if action == "enqueue":
        rate, ping = module.enqueue_rate(float(value))
        print(json.dumps({"rate": rate, "ping": ping}), flush=True)
    else:
        start = time.perf_counter()
        module.preload(int(value), variant)
        print(json.dumps({"seconds": time.perf_counter() - start}), flush=True)


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    child(sys.argv[2:])
    sys.exit(0)


import redis  # noqa: E402  (the child mode above needs none of these)
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from tarefa.store.embedded import redis_server_binary  # noqa: E402

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as bench/peers.py: make `bench` importable
from bench.core import BenchServer, measure_ping, progress  # noqa: E402

# -- the systems ------------------------------------------------------------------


@dataclass
class Peer:
    key: str  # row id and PEERS_KEY of its worker (peers:done:<key>)
    label: str
    module: str  # bench.peer_tasks.<lib>
    imports: str  # top-level module that must be importable
    dists: tuple[str, ...]  # distributions whose versions the row shows
    mode: str  # how the enqueue rate is measured
    worker: list[str]  # the worker command, {url} and {t} filled in
    concurrency: str  # the notes' word on the worker's concurrency
    results: str  # the notes' word on results (and acks) by default
    variant: str = ""  # passed to preload (tarefa: "async" | "sync")
    enqueue: bool = True  # False: same enqueue call as the row above
    share: float = 1.0  # of --jobs this one gets (slow ones fewer, to stay near --cap)
    every: int = 100  # PEERS_EVERY: jobs per round trip of the done-count (see _common)
    skip: str = ""  # why it cannot run here, if so


def py_module(name: str) -> list[str]:
    return [sys.executable, "-m", name]


def script(name: str) -> list[str]:
    path = BIN / name
    return [str(path)] if path.exists() else [name]


T = str(CONCURRENCY)

# fmt: off
PEERS = [
    Peer("tarefa", "tarefa", "bench.peer_tasks.tarefa", "tarefa", ("tarefa",),
         mode="sync: task.enqueue",
         worker=py_module("tarefa") + ["worker", "bench.peer_tasks.tarefa:app",
                                       "-q", "peers", "-c", T],
         concurrency="async task on the event loop, -c 50",
         results="result kept 1 h (result_ttl); leases + heartbeat",
         variant="async"),
    Peer("tarefa-sync", "tarefa (sync task)", "bench.peer_tasks.tarefa", "tarefa", ("tarefa",),
         mode="same call as above",
         worker=py_module("tarefa") + ["worker", "bench.peer_tasks.tarefa:app",
                                       "-q", "peers_sync", "-c", T],
         concurrency="sync task in its thread pool, -c 50",
         results="as above", variant="sync", enqueue=False),
    Peer("rq", "RQ", "bench.peer_tasks.rq", "rq", ("rq",),
         mode="sync: Queue.enqueue",
         worker=script("rq") + ["worker", "-q", "-u", "{url}", "peers"],
         concurrency="default Worker: forks a work horse per job, 1 job at a time",
         results="result kept 500 s (default result_ttl)",
         share=0.08, every=1),
    Peer("rq-simple", "RQ (SimpleWorker)", "bench.peer_tasks.rq", "rq", ("rq",),
         mode="same call as above",
         worker=script("rq") + ["worker", "-q", "-u", "{url}", "-w", "rq.SimpleWorker",
                                "peers"],
         concurrency="SimpleWorker: no fork, 1 job at a time",
         results="as above", enqueue=False, share=0.15),
    Peer("arq", "arq", "bench.peer_tasks.arq", "arq", ("arq",),
         mode="async: await pool.enqueue_job",
         worker=script("arq") + ["bench.peer_tasks.arq.WorkerSettings",
                                 "--custom-log-dict", "bench.peer_tasks.arq.LOG_CONFIG"],
         concurrency="max_jobs=50",
         results="result kept 1 h (keep_result)",
         share=0.4),
    Peer("saq", "SAQ", "bench.peer_tasks.saq", "saq", ("saq",),
         mode="async: await queue.enqueue",
         worker=script("saq") + ["bench.peer_tasks.saq.settings"],
         concurrency="concurrency=50",
         results="finished job kept 600 s (ttl)",
         share=0.5),
    Peer("dramatiq", "Dramatiq", "bench.peer_tasks.dramatiq", "dramatiq", ("dramatiq",),
         mode="sync: actor.send",
         worker=script("dramatiq") + ["bench.peer_tasks.dramatiq", "--processes", "1",
                                      "--threads", "{t}"],
         concurrency="--processes 1 --threads {t}",
         results="keeps no result (no Results middleware by default); acks"),
    Peer("huey", "Huey", "bench.peer_tasks.huey", "huey", ("huey",),
         mode="sync: task(...)",
         worker=script("huey_consumer") + ["bench.peer_tasks.huey.huey", "-k", "thread",
                                           "-w", "{t}", "-q"],
         concurrency="-k thread -w {t}",
         results="a None result is not stored (store_none=False); no acks"),
    Peer("taskiq", "taskiq", "bench.peer_tasks.taskiq", "taskiq_redis",
         ("taskiq", "taskiq-redis"),
         mode="async: await task.kiq",
         worker=script("taskiq") + ["worker", "bench.peer_tasks.taskiq:broker",
                                    "--workers", "1", "--max-async-tasks", T,
                                    "--log-level", "WARNING"],
         concurrency="--workers 1 --max-async-tasks 50",
         results="result kept, no expiry (backend default); stream broker with acks",
         share=0.5),
    Peer("celery", "Celery", "bench.peer_tasks.celery", "celery", ("celery", "kombu"),
         mode="sync: task.delay",
         worker=script("celery") + ["-A", "bench.peer_tasks.celery", "worker",
                                    "-P", "threads", "-c", "{t}", "-l", "WARNING"],
         concurrency="-P threads -c {t}",
         results="result kept 1 day (result_expires)",
         share=0.3),
]
# fmt: on

# Threads of the thread-pool peers: the best of 8 / 16 / 50 for each, from
# one-off probes on this machine (4,000 jobs; jobs/s at 8 / 16 / 50 threads:
# Dramatiq 2,064 / 2,623 / 2,691, Huey 2,819 / 2,335 / 1,480, Celery 622 / 497 /
# 464); --threads overrides. Celery's gevent pool (gevent 26.9.0, installed for
# the probe only) did about 100 jobs/s at -c 8 / 50 / 200, far below its threads.
THREADS = {"dramatiq": "50", "huey": "8", "celery": "8"}


def threads_of(peer: Peer, override: int | None) -> str:
    if peer.key in THREADS:
        return str(override) if override else THREADS[peer.key]
    return T


def versions(peer: Peer) -> str:
    out = []
    for dist in peer.dists:
        try:
            out.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            out.append(f"{dist} ?")
    return ", ".join(out)


def find_skips(peers: list[Peer]) -> None:
    for peer in peers:
        try:
            importlib.import_module(peer.imports)
        except Exception as exc:  # ImportError, or a library that breaks on import
            peer.skip = f"cannot import {peer.imports}: {type(exc).__name__}: {exc}"
            continue
        exe = peer.worker[0]
        if exe != sys.executable and shutil.which(exe) is None:
            peer.skip = f"worker command {exe} not found"


# -- processes --------------------------------------------------------------------


class Procs:
    """Children and workers, each in its own process group, with env and logs set."""

    def __init__(self, url: str, log_dir: Path):
        self.url = url
        self.log_dir = log_dir
        self.env = dict(os.environ, PEERS_URL=url, TAREFA_URL=url)
        self.env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
        )
        self.live: list[subprocess.Popen] = []
        self.count = 0

    def child(self, peer: Peer, *args: str) -> dict:
        """Runs this file's --child mode for ``peer``; its JSON answer."""
        self.count += 1
        log_path = self.log_dir / f"{self.count:03d}-{peer.key}-{args[0]}.log"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", peer.module, *args]
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=log,
                start_new_session=True,
            )  # fmt: skip
            self.live.append(proc)
            try:
                out, _ = proc.communicate(timeout=CHILD_TIMEOUT)
            finally:
                self.stop(proc, timeout=1)
        if proc.returncode != 0:
            raise RuntimeError(f"{args[0]} failed (exit {proc.returncode}): {last_line(log_path)}")
        return json.loads(out.decode().strip().splitlines()[-1])

    def worker(self, peer: Peer, threads: int | None) -> tuple[subprocess.Popen, Path]:
        self.count += 1
        log_path = self.log_dir / f"{self.count:03d}-{peer.key}-worker.log"
        t = threads_of(peer, threads)
        cmd = [part.format(url=self.url, t=t) for part in peer.worker]
        env = dict(self.env, PEERS_KEY=peer.key, PEERS_EVERY=str(peer.every))
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True,
            )  # fmt: skip
        self.live.append(proc)
        return proc, log_path

    def stop(self, proc: subprocess.Popen, timeout: float = 10.0) -> None:
        """SIGTERM to the process group (workers fork: Dramatiq, taskiq, RQ), then
        SIGKILL to what is left of it."""
        try:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    pass
            os.killpg(proc.pid, signal.SIGKILL)  # the group's leftovers, if any
        except ProcessLookupError:
            pass
        proc.wait()
        if proc in self.live:
            self.live.remove(proc)

    def stop_all(self) -> None:
        for proc in list(self.live):
            self.stop(proc, timeout=3)


def last_line(path: Path) -> str:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip()[:300] if lines else "(empty log)"


def log_problems(path: Path, limit: int = 3) -> list[str]:
    bad = [
        line.strip()[:200]
        for line in path.read_text(errors="replace").splitlines()
        if any(word in line for word in ("ERROR", "Traceback", "CRITICAL", "Error:"))
    ]
    return bad[:limit] + ([f"... and {len(bad) - limit} more"] if len(bad) > limit else [])


# -- the metrics ------------------------------------------------------------------


@dataclass
class WorkerResult:
    rate: float
    done: int
    startup: float  # seconds from the worker's start to its first job's mark (polled)
    pings: tuple[float, float]  # PING loops just before and just after the worker ran
    problems: list[str] = field(default_factory=list)


def measure_worker(
    peer: Peer,
    n: int,
    cap: float,
    client: redis.Redis,
    procs: Procs,
    threads: int | None,
    ping_seconds: float,
) -> WorkerResult:
    """Enqueues ``n`` jobs, starts one worker, stops it once they are done (or ``cap``
    seconds after the first): (marks - 1) / (last mark - first mark)."""
    done_key, first_key, last_key = (f"peers:{k}:{peer.key}" for k in ("done", "first", "last"))
    preload = procs.child(peer, "preload", str(n), peer.variant)
    progress(f"    {n:,} jobs enqueued in {preload['seconds']:.1f} s; starting one worker")
    ping_before = measure_ping(client, ping_seconds)
    problems: list[str] = []
    start = time.perf_counter()
    first_seen = math.nan
    proc, log_path = procs.worker(peer, threads)
    try:
        while True:
            count = int(client.get(done_key) or 0)
            now = time.perf_counter()
            if count and math.isnan(first_seen):
                first_seen = now
            if count >= n:
                break
            if proc.poll() is not None:
                problems.append(f"worker exited with code {proc.returncode}: {last_line(log_path)}")
                break
            if not count and now - start > START_TIMEOUT:
                problems.append(f"no job done {START_TIMEOUT:.0f} s after the worker started")
                break
            if count and now - first_seen > cap:
                problems.append(f"capped at {cap:.0f} s: {count:,} of {n:,} jobs done")
                break
            time.sleep(0.02)
    finally:
        procs.stop(proc)
    pings = (ping_before, measure_ping(client, ping_seconds))
    problems += [f"worker log: {line}" for line in log_problems(log_path)]
    count, first, last = client.mget(done_key, first_key, last_key)
    count = int(count or 0)
    if count < 2:
        return WorkerResult(math.nan, count, math.nan, pings, problems)
    span = (int(last) - int(first)) / 1e6
    rate = (count - 1) / span if span > 0 else math.nan
    return WorkerResult(rate, count, first_seen - start, pings, problems)


@dataclass
class Row:
    """One system's samples, one per run."""

    enqueue: list[tuple[float, float]] = field(default_factory=list)  # (rate, its PING)
    worker: list[float] = field(default_factory=list)
    startup: list[float] = field(default_factory=list)
    jobs: set[int] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


def one_run(
    args,
    peers: list[Peer],
    rows: dict[str, Row],
    client: redis.Redis,
    procs: Procs,
    pings: list[float],
    run: int,
) -> None:
    shift = run % len(peers)  # each run starts one system further on: drift spreads out
    for peer in peers[shift:] + peers[:shift]:
        if peer.skip:
            continue
        row = rows[peer.key]
        try:
            client.flushall()
            if peer.enqueue:
                got = procs.child(peer, "enqueue", str(args.seconds), peer.variant)
                row.enqueue.append((got["rate"], got["ping"]))
                pings.append(got["ping"])
                progress(
                    f"  {peer.label}: enqueue {got['rate']:,.0f}/s (PING {got['ping']:,.0f}/s)"
                )
            client.flushall()
            n = max(1, round(args.jobs * peer.share / 100)) * 100  # whole batches of marks
            row.jobs.add(n)
            result = measure_worker(
                peer, n, args.cap, client, procs, args.threads, args.ping_seconds
            )
            row.worker.append(result.rate)
            pings.extend(result.pings)
            ping = sum(result.pings) / 2
            row.startup.append(result.startup)
            row.problems += result.problems
            progress(
                f"  {peer.label}: PING {ping:,.0f}/s, worker {result.rate:,.0f} jobs/s "
                f"({result.done:,} jobs; first done {result.startup:.2f} s after start)"
            )
        except Exception as exc:
            row.problems.append(f"{type(exc).__name__}: {exc}")
            progress(f"  {peer.label}: FAILED {type(exc).__name__}: {exc}")
        finally:
            client.flushall()


# -- the table --------------------------------------------------------------------


def median(values) -> float:
    values = [v for v in values if not math.isnan(v)]
    return statistics.median(values) if values else math.nan


def fmt_rate(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.0f}"


def fmt_ratio(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.2f}x"


def spread(values) -> str:
    values = [v for v in values if not math.isnan(v)]
    return f"{min(values):,.0f}-{max(values):,.0f}" if len(values) > 1 else ""


def build_table(peers: list[Peer], rows: dict[str, Row], pings: list[float], args) -> Table:
    table = Table(title=f"tarefa and its peers on one Redis (medians of {args.runs} run(s))")
    table.add_column("system")
    table.add_column("enqueue jobs/s", justify="right")
    table.add_column("x PING", justify="right")
    table.add_column("worker jobs/s", justify="right", style="bold")
    table.add_column("x PING", justify="right")
    table.add_column("notes")
    table.add_row(
        "PING loop (redis-py)",
        fmt_rate(median(pings)),
        "1.00x",
        "",
        "",
        f"round-trip floor; {len(pings)} loops, "
        f"{min(pings, default=math.nan):,.0f} to {max(pings, default=math.nan):,.0f}/s",
    )
    for peer in peers:
        label = f"{peer.label}\n[dim]{versions(peer)}[/dim]"
        if peer.skip:
            table.add_row(label, "-", "", "-", "", f"skipped: {peer.skip}")
            continue
        row = rows[peer.key]
        jobs = "/".join(f"{n:,}" for n in sorted(row.jobs))
        notes = [
            f"enqueue: {peer.mode}",
            f"worker: {peer.concurrency.format(t=threads_of(peer, args.threads))}; {jobs} jobs",
            peer.results,
        ]
        startup = median(row.startup)
        if not math.isnan(startup):
            notes.append(f"first job done {startup:.1f} s after worker start")
        # enqueue: each run's rate / the PING interleaved with it, then the median;
        # worker: median rate / median PING (no PING loop can run beside a worker
        # without slowing it down)
        enq = median(r for r, _ in row.enqueue)
        enq_x = median(r / p for r, p in row.enqueue)
        wrk = median(row.worker)
        wrk_x = wrk / median(pings)
        ranges = [
            f"{what} {spread(values)}"
            for what, values in (("enqueue", [r for r, _ in row.enqueue]), ("worker", row.worker))
            if spread(values)
        ]
        if ranges:
            notes.append("runs: " + ", ".join(ranges) + " jobs/s")
        table.add_row(
            label,
            fmt_rate(enq) if peer.enqueue else "(same)",
            fmt_ratio(enq_x),
            fmt_rate(wrk),
            fmt_ratio(wrk_x),
            "\n".join(notes),
            end_section=True,
        )
    return table


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=None, help="runs (default 3; --quick: 1)")
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="jobs per worker metric (default 10000; --quick: 1000); the slow ones get "
        "a share, in whole hundreds: "
        + ", ".join(f"{p.label} {p.share * 100:g} %%" for p in PEERS if p.share < 1),
    )
    parser.add_argument(
        "--cap",
        type=float,
        default=None,
        help="stop a worker this many s after its first job (default 20; --quick: 10)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="length of each enqueue loop (default 2; --quick: 0.5)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for Dramatiq, Huey and Celery (default: "
        + ", ".join(f"{k} {v}" for k, v in THREADS.items())
        + ")",
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated peers to run (tarefa always runs): "
        + ",".join(p.key for p in PEERS if not p.key.startswith("tarefa")),
    )
    parser.add_argument("--quick", action="store_true", help="small N, one run: a smoke check")
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the worker and redis logs (path on stderr)"
    )
    args = parser.parse_args(argv)
    quick = args.quick
    args.runs = args.runs or (1 if quick else 3)
    args.jobs = args.jobs or (1000 if quick else 10000)
    args.cap = args.cap or (10.0 if quick else 20.0)
    args.seconds = args.seconds or (0.5 if quick else 2.0)
    args.ping_seconds = 0.25 if quick else 0.5
    return args


def _stop_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds through main's finally: workers, redis-server


def main(argv=None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    only = {k.strip() for k in args.only.split(",") if k.strip()}
    peers = [
        p
        for p in PEERS
        if not only or p.key.startswith("tarefa") or p.key in only or p.key.split("-")[0] in only
    ]
    find_skips(peers)
    for peer in peers:
        if peer.skip:
            progress(f"skipping {peer.label}: {peer.skip}")
    tmp = Path(tempfile.mkdtemp(prefix="tarefa-peers-"))
    server = BenchServer(tmp)
    procs = None
    started = time.perf_counter()
    try:
        server.start()
        client = redis.Redis(host="127.0.0.1", port=server.port)
        procs = Procs(server.url, tmp)
        rows = {p.key: Row() for p in peers}
        pings: list[float] = []
        for i in range(args.runs):
            progress(f"run {i + 1}/{args.runs}")
            one_run(args, peers, rows, client, procs, pings, i)
        console = Console() if sys.stdout.isatty() else Console(width=150)
        console.print(build_table(peers, rows, pings, args))
        server_version = client.info("server")["redis_version"]
        console.print(
            f"{args.runs} run(s) on redis-server {server_version} "
            f"({redis_server_binary()}), redis-py {metadata.version('redis')} with hiredis "
            f"{metadata.version('hiredis')}, Python {sys.version.split()[0]}, "
            f"{os.cpu_count()} CPUs.\n"
            f"enqueue: single calls back to back for {args.seconds:g} s, fresh process "
            "per system. worker: one worker process; rate = (jobs - 1) / (last - first "
            f"job done, Redis clock), one round trip per 100 jobs to count them; cap "
            f"{args.cap:g} s.\nx PING: enqueue: median over runs of (rate / the PING loop "
            "interleaved with it); worker: median rate / the PING row (median of all PING "
            "loops: those beside the enqueue loops, and those just before and after each "
            "worker run). Systems run in a rotated order each run.",
            markup=False,
            highlight=False,
        )
        for peer in peers:
            for problem in dict.fromkeys(rows[peer.key].problems):  # unique, in order
                console.print(f"note: {peer.label}: {problem}", markup=False, highlight=False)
        client.close()
        progress(f"done in {time.perf_counter() - started:.0f} s")
    finally:
        if procs is not None:
            procs.stop_all()
        server.stop()
        if args.keep_logs:
            progress(f"logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
