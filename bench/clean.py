"""How long ``tarefa clean`` takes: deleting N completed jobs, and N failed.

Run from the repository root:

    .venv/bin/python bench/clean.py                  # 100,000 jobs of each
    .venv/bin/python bench/clean.py --jobs 10000

It starts its own redis-server on a free port (no persistence), runs
``--jobs`` no-op jobs and as many failing ones (no retries) through a worker,
then times ``tarefa clean default --state completed --older-than 0 --yes``
and the same for the failed ones, each as a real subprocess, and prints the
time each took and how long Redis was held by its longest single call
(``SLOWLOG``: every script call over 1 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time

import redis
from rich.console import Console
from rich.table import Table

from tarefa import App
from tarefa.store.embedded import redis_server_binary
from tarefa.worker import Worker

from .memory import start_server


def fill(app: App, jobs: int) -> None:
    """``jobs`` completed and ``jobs`` failed jobs in queue default."""
    ok = app.task(lambda: None, name="bench.clean:ok", retries=0)
    bad = app.task(_fails, name="bench.clean:fails", retries=0)
    for task in (ok, bad):
        for start in range(0, jobs, 10_000):
            task.enqueue_many([()] * min(10_000, jobs - start))
        asyncio.run(Worker(app, ["default"], concurrency=50, burst=True).run())


def _fails() -> None:
    raise ValueError("no")


def clean(url: str, state: str) -> tuple[float, str]:
    began = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "tarefa", "clean", "default", "--state", state,
         "--older-than", "0", "--yes"],
        env=dict(os.environ, TAREFA_URL=url), capture_output=True, text=True, check=True,
    )  # fmt: skip
    return time.perf_counter() - began, out.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--server", default=None, help="redis-server binary")
    options = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="tarefa-bench-clean-")
    process, port = start_server(options.server or redis_server_binary(), directory)
    try:
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis(port=port)
        app = App(url)
        app.configure_queue("default", keep_failed=None)  # all of them, for the measure
        fill(app, options.jobs)
        counts = app.queue("default").counts()
        table = Table("state", "jobs", "tarefa clean", "what it said", "longest Redis call")
        for state in ("completed", "failed"):
            client.config_set("slowlog-log-slower-than", 1000)
            client.slowlog_reset()
            seconds, said = clean(url, state)
            longest = max((e["duration"] for e in client.slowlog_get(100_000)), default=0)
            table.add_row(state, f"{counts[state]:,}", f"{seconds:.2f} s", said,
                          f"{longest / 1000:.1f} ms" if longest else "< 1 ms")  # fmt: skip
        Console().print(table)
        app.close()
    finally:
        process.kill()
        process.wait()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
