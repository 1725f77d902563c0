"""The transactional outbox (tarefa.outbox): what it costs a producer, how
soon a committed job starts, and how fast one relay moves a backlog.

Run from the repository root (needs Debian's postgresql and redis-server):

    .venv/bin/python bench/outbox.py            # 3 runs
    .venv/bin/python bench/outbox.py --runs 1   # smoke check

It starts its own redis-server and PostgreSQL (fsync off: the figures are
tarefa's and the relay's, not the disk's). Per run:

- the PING loop of one Redis client (the floor the rates are held to);
- enqueue: µs per job of ``task.enqueue`` and of ``outbox.enqueue`` (2,000
  jobs, one transaction committed every 100 jobs);
- commit to start: a relay (in a thread) and a worker (in a thread) run;
  200 times, one job is written and committed, and its result is the time
  it started: the delay from the commit's return to that start (median, p95);
- relay: 20,000 committed rows moved by one relay, batches of 500: jobs/s.

"x" is a rate over the same run's PING loop rate; medians over the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import redis
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as bench/outbox.py: bench and tests importable

from bench.core import measure_ping  # noqa: E402
from tarefa import App, outbox  # noqa: E402
from tarefa.outbox import Relay  # noqa: E402
from tarefa.worker import Worker  # noqa: E402
from tests.postgres_server import PostgresServer  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

app = App()  # its URL is set in main(), before its first call


@app.task(retries=0)
def started() -> float:
    return time.time()


@app.task(retries=0)
def noop(i: int) -> None:
    return None


def enqueue_costs(database_url: str, jobs: int = 2000) -> tuple[float, float]:
    """µs per job: task.enqueue, outbox.enqueue (committed every 100)."""
    began = time.perf_counter()
    for i in range(jobs):
        noop.enqueue(i)
    direct = (time.perf_counter() - began) / jobs * 1e6
    with psycopg.connect(database_url) as db:
        began = time.perf_counter()
        for i in range(jobs):
            outbox.enqueue(db, noop, i)
            if i % 100 == 99:
                db.commit()
        db.commit()
        through_outbox = (time.perf_counter() - began) / jobs * 1e6
    return direct, through_outbox


def commit_to_start(database_url: str, samples: int = 200) -> list[float]:
    """Seconds from each commit's return to its job's start."""
    relay = Relay(app, database_url)
    worker = Worker(app, ["default"], concurrency=4)
    threads = [
        threading.Thread(target=relay.run),
        threading.Thread(target=asyncio.run, args=(worker.run(),)),
    ]
    for thread in threads:
        thread.start()
    delays = []
    try:
        with psycopg.connect(database_url) as db:
            for _ in range(samples):
                job = outbox.enqueue(db, started)
                db.commit()
                committed = time.time()
                while app.backend.job("default", job.id) is None:
                    time.sleep(0.0002)
                delays.append(job.result(timeout=30) - committed)
    finally:
        relay.stop()
        worker.stop()
        for thread in threads:
            thread.join()
    return delays


def relay_rate(database_url: str, rows: int = 20000) -> float:
    with psycopg.connect(database_url) as db:
        for i in range(rows):
            outbox.enqueue(db, noop, i)
        db.commit()
        relay = Relay(app, database_url)
        began = time.perf_counter()
        while relay.relay_once(db):
            pass
        return rows / (time.perf_counter() - began)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    err = Console(stderr=True)
    directory = Path(tempfile.mkdtemp(prefix="tarefa-bench-outbox-"))
    server = RedisServer(directory).start()  # (no AOF)
    postgres = PostgresServer().start()
    app._url = server.url
    try:
        with psycopg.connect(postgres.url) as db:
            outbox.install(db)
        client = redis.Redis.from_url(server.url)
        runs: list[dict[str, float]] = []
        for run in range(args.runs):
            err.print(f"run {run + 1} of {args.runs}")
            client.flushall()
            ping = measure_ping(client, 2.0)
            direct, through = enqueue_costs(postgres.url)
            client.flushall()
            delays = sorted(commit_to_start(postgres.url))
            client.flushall()
            rate = relay_rate(postgres.url)
            runs.append(
                {
                    "ping": ping,
                    "direct_us": direct,
                    "outbox_us": through,
                    "median_ms": statistics.median(delays) * 1000,
                    "p95_ms": delays[int(len(delays) * 0.95)] * 1000,
                    "relay": rate,
                }
            )
        table = Table(title=f"tarefa's outbox, median of {args.runs} runs")
        table.add_column("measure")
        table.add_column("value", justify="right")
        table.add_column("x PING loop", justify="right")

        def med(key: str) -> float:
            return statistics.median(run[key] for run in runs)

        def ratio(key: str) -> str:
            return f"{statistics.median(run[key] / run['ping'] for run in runs):.2f}x"

        table.add_row("PING loop, one client", f"{med('ping'):,.0f} /s", "1.00x")
        table.add_row("task.enqueue", f"{med('direct_us'):.0f} µs/job", "")
        table.add_row("outbox.enqueue (commit per 100)", f"{med('outbox_us'):.0f} µs/job", "")
        table.add_row("commit to job start, median", f"{med('median_ms'):.1f} ms", "")
        table.add_row("commit to job start, p95", f"{med('p95_ms'):.1f} ms", "")
        table.add_row("one relay, batches of 500", f"{med('relay'):,.0f} jobs/s", ratio("relay"))
        Console().print(table)
    finally:
        postgres.close()
        server.stop()


if __name__ == "__main__":
    main()
