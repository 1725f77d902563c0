"""Stress test of a worker's stopping: it must always exit.

Rounds of two kinds, each with sync (thread), async and process-pool jobs in
turn, against one redis-server of its own:

- cancel: start a worker, enqueue a long job, cancel it once it runs, wait
  until the worker has stopped it (its registration says it runs nothing),
  then SIGTERM the worker: the order that used to leave it idle for ever;
- burst: enqueue a few quick jobs, run a ``--burst`` worker to its end.

A worker that has not exited ``--hang`` seconds after its SIGTERM (or after
its jobs are done, in a burst round) counts as a hang; its log is kept.

    .venv/bin/python bench/stop_stress.py                  # 1,000 rounds of each kind
    .venv/bin/python bench/stop_stress.py --rounds 30 --parallel 2

Prints a table: rounds, hangs, bad exits, and the median and maximum time
from the SIGTERM (or the last job) to the exit. Exits 1 if any round hung.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]  # this tree's tarefa, not another install

from bench.core import BenchServer  # noqa: E402

POOLS = ("sync", "async", "process")


@dataclass
class Tally:
    rounds: int = 0
    hangs: list[str] = field(default_factory=list)
    bad_exits: list[str] = field(default_factory=list)
    exit_times: list[float] = field(default_factory=list)


def spawn(queue: str, log: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tarefa", "worker", "bench.stop_tasks:app", "-q", queue,
         "--lease", "2", "--grace", "5", *args],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)])),
        stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def ended(proc: subprocess.Popen, hang: float) -> tuple[int | None, float]:
    """The exit code (None: a hang) and how long the exit took."""
    began = time.monotonic()
    try:
        code = proc.wait(timeout=hang)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        code = None
    return code, time.monotonic() - began


def cancel_round(n: int, pool: str, client: redis.Redis, logs: Path, hang: float):
    from bench import stop_tasks

    queue = f"stop-{n}"
    log = logs / f"cancel-{n}-{pool}.log"
    proc = spawn(queue, log)
    try:
        job = getattr(stop_tasks, f"long_{pool}").with_options(queue=queue).enqueue()
        if client.blpop([f"stress:started:{queue}"], timeout=hang) is None:
            return "no start", None, log
        if not running(stop_tasks.app, proc.pid, 1, hang):
            return "job not seen", None, log
        job.cancel()
        if not running(stop_tasks.app, proc.pid, 0, hang):
            return "cancel not seen", None, log
        proc.send_signal(signal.SIGTERM)
        code, took = ended(proc, hang)
        return code, took, log
    finally:
        if proc.poll() is None:
            proc.kill()


def running(app, pid: int, jobs: int, hang: float) -> bool:
    """Whether the worker of process ``pid`` said, within ``hang`` seconds, that
    it runs ``jobs`` jobs (it renews its registration every lease / 4)."""
    from tarefa import manage

    deadline = time.monotonic() + hang
    while time.monotonic() < deadline:
        if any(w["pid"] == pid and w["running"] == jobs for w in manage.workers(app)):
            return True
        time.sleep(0.05)
    return False


def burst_round(n: int, pool: str, client: redis.Redis, logs: Path, hang: float):
    from bench import stop_tasks

    queue = f"burst-{n}"
    log = logs / f"burst-{n}-{pool}.log"
    jobs = (
        getattr(stop_tasks, f"quick_{pool}")
        .with_options(queue=queue)
        .enqueue_many([(i,) for i in range(5)])
    )
    proc = spawn(queue, log, "--burst", "-c", "2")
    code, took = ended(proc, hang + 30)  # the start and the jobs, then the exit
    if code == 0 and any(j.status.value != "completed" for j in jobs):
        code = "jobs left"
    return code, took, log


def run(kind, rounds: int, parallel: int, client, logs: Path, hang: float) -> Tally:
    tally = Tally()
    one = cancel_round if kind == "cancel" else burst_round
    pools = itertools.cycle(POOLS)
    with ThreadPoolExecutor(parallel) as threads:
        futures = [threads.submit(one, n, next(pools), client, logs, hang) for n in range(rounds)]
        for n, future in enumerate(futures):
            code, took, log = future.result()
            tally.rounds += 1
            if code is None:
                tally.hangs.append(str(log))
            elif code != 0:
                tally.bad_exits.append(f"{log}: {code}")
            else:
                tally.exit_times.append(took)
                if kind == "cancel":
                    log.unlink()
            if (n + 1) % 50 == 0:
                print(f"{kind}: {n + 1}/{rounds}", file=sys.stderr, flush=True)
    return tally


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1000, help="rounds of each kind")
    parser.add_argument("--parallel", type=int, default=2, help="rounds at once")
    parser.add_argument("--hang", type=float, default=60.0, help="seconds before a hang")
    parser.add_argument("--logs", type=Path, help="where workers' logs go (default: a temp dir)")
    args = parser.parse_args()
    logs = args.logs or Path(tempfile.mkdtemp(prefix="tarefa-stop-"))
    logs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as directory:
        server = BenchServer(Path(directory))
        server.start()
        os.environ["TAREFA_URL"] = server.url
        client = redis.Redis.from_url(server.url, socket_timeout=None)  # BLPOPs wait long
        try:
            tallies = {k: run(k, args.rounds, args.parallel, client, logs, args.hang)
                       for k in ("cancel", "burst")}  # fmt: skip
        finally:
            server.stop()
    print(f"{'rounds':<32}{'n':>6}{'hangs':>7}{'bad exits':>11}{'exit median':>13}{'max':>8}")
    for kind, tally in tallies.items():
        what = {"cancel": "start, cancel a job, SIGTERM", "burst": "--burst to its end"}[kind]
        times = tally.exit_times or [float("nan")]
        print(f"{what:<32}{tally.rounds:>6}{len(tally.hangs):>7}{len(tally.bad_exits):>11}"
              f"{statistics.median(times):>12.2f}s{max(times):>7.2f}s")  # fmt: skip
        for line in tally.hangs + tally.bad_exits:
            print(f"  {line}")
    print(f"logs: {logs}")
    return 1 if any(t.hangs or t.bad_exits for t in tallies.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
