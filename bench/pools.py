"""Sync no-op jobs in the thread pool vs the process pool: what a job costs.

Run from the repository root:

    .venv/bin/python bench/pools.py                 # 5,000 jobs, -c 1 and -c 4
    .venv/bin/python bench/pools.py --jobs 20000 -c 1 -c 2 -c 10

For each concurrency and pool, one ``tarefa worker --burst`` drains the jobs; the
rate runs from the first job's start to the last job's finish as Redis recorded
them (so the worker's and the children's start-up are left out). The cost per
job is the inverse of the rate; "extra" is what the process pool adds to it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.core import BATCH, ROOT, BenchServer, Workers, progress  # noqa: E402


def drain(pool: str, concurrency: int, n: int, client: redis.Redis, workers: Workers) -> float:
    from bench.core_tasks import noop_sync

    client.flushall()
    task = noop_sync.with_options(queue="pools")
    ids = []
    for first in range(0, n, BATCH):
        ids += [
            j.id for j in task.enqueue_many([(i,) for i in range(first, min(first + BATCH, n))])
        ]
    cmd = [sys.executable, "-m", "tarefa", "worker", "bench.core_tasks:app", "-q", "pools",
           "-c", str(concurrency), "--pool", pool, "--burst"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=workers.env, capture_output=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.decode(errors="replace")[-2000:])
    pipe = client.pipeline(transaction=False)
    for job_id in ids:
        pipe.hmget(f"tarefa:{{pools}}:job:{job_id}", "started_at", "finished_at")
    stamps = pipe.execute()
    finished = [int(f) for _, f in stamps if f is not None]
    if len(finished) < n:
        raise RuntimeError(f"only {len(finished)} of {n} jobs finished")
    span = (max(finished) - min(int(s) for s, _ in stamps)) / 1000
    return n / span


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("-c", "--concurrency", type=int, action="append")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tarefa-bench-") as tmp:
        server = BenchServer(Path(tmp))
        server.start()
        try:
            workers = Workers(server.url, Path(tmp))
            client = redis.Redis.from_url(server.url)
            import os

            os.environ["TAREFA_URL"] = server.url
            print(f"{'-c':>4} {'thread jobs/s':>14} {'process jobs/s':>15} "
                  f"{'thread µs/job':>14} {'process µs/job':>15} {'extra µs/job':>13}")  # fmt: skip
            for c in args.concurrency or [1, 4]:
                progress(f"-c {c}: {args.jobs} jobs, thread pool then process pool")
                t0 = time.perf_counter()
                thread = drain("thread", c, args.jobs, client, workers)
                process = drain("process", c, args.jobs, client, workers)
                progress(f"  {time.perf_counter() - t0:.1f} s")
                print(f"{c:>4} {thread:>14,.0f} {process:>15,.0f} {1e6 / thread:>14.0f} "
                      f"{1e6 / process:>15.0f} {1e6 / process - 1e6 / thread:>13.0f}")  # fmt: skip
        finally:
            server.stop()


if __name__ == "__main__":
    main()
