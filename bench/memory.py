"""What a job costs in Redis's memory, queued and completed.

Run from the repository root:

    .venv/bin/python bench/memory.py                     # redis-server from PATH
    .venv/bin/python bench/memory.py --server PATH       # another redis-server (6.2...)

It starts its own redis-server on a free port (no persistence), enqueues
``--jobs`` jobs of ``send_email("a@b.c", "Hi")`` and as many with a 500-byte
argument, runs a worker until they have all completed (results kept, the
default hour), and prints, per job:

- its hash: ``MEMORY USAGE tarefa:{emails}:job:<id> SAMPLES 0`` of one job
  (every job of a kind has the same fields and sizes);
- its index entry: ``MEMORY USAGE`` of the index (the ready list when queued,
  the completed zset when completed), divided by the jobs in it;
- all told: the growth of ``used_memory`` (INFO memory) over the jobs,
  divided by their number, which also counts each key's entry in Redis's
  key space and, for a completed job, in its table of expiring keys.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
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

QUEUE = "emails"
KINDS = {  # name: the arguments of each job
    'send_email("a@b.c", "Hi")': ("a@b.c", "Hi"),
    "a 500-byte argument": ("a@b.c", "x" * 500),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(binary: str, directory: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", directory]  # fmt: skip
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return process, port
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{binary} did not start") from None
            time.sleep(0.02)


def measure(client: redis.Redis, app: App, send, args: tuple, jobs: int) -> dict[str, float]:
    """Bytes per job of one kind, queued then completed (the queue empty before)."""
    prefix = f"tarefa:{{{QUEUE}}}:"
    used = client.info("memory")["used_memory"]
    ids = [job.id for job in send.enqueue_many([args] * jobs)]
    queued_used = client.info("memory")["used_memory"]
    sample = prefix + "job:" + ids[len(ids) // 2]
    figures = {
        "queued hash": client.memory_usage(sample, samples=0),
        "queued index": client.memory_usage(prefix + "ready", samples=0) / jobs,
        "queued all told": (queued_used - used) / jobs,
    }
    asyncio.run(Worker(app, [QUEUE], concurrency=50, burst=True).run())
    done_used = client.info("memory")["used_memory"]
    figures |= {
        "completed hash": client.memory_usage(sample, samples=0),
        "completed index": client.memory_usage(prefix + "completed", samples=0) / jobs,
        "completed all told": (done_used - used) / jobs,
    }
    client.delete(prefix + "completed", *(prefix + "job:" + i for i in ids))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs of each kind")
    parser.add_argument("--server", default=None, help="the redis-server binary")
    args = parser.parse_args()
    binary = args.server or redis_server_binary()
    directory = tempfile.mkdtemp(prefix="tarefa-memory-")
    process, port = start_server(binary, directory)
    os.environ["TAREFA_URL"] = url = f"redis://127.0.0.1:{port}"
    app = App(url)
    send = app.task(lambda to, subject: None, name="shop.jobs:send_email", queue=QUEUE)
    client = redis.Redis(port=port)
    try:
        send.enqueue("warm-up", "")  # the queue's keys, the scripts
        asyncio.run(Worker(app, [QUEUE], burst=True).run())
        version = client.info("server")["redis_version"]
        results = {kind: measure(client, app, send, a, args.jobs) for kind, a in KINDS.items()}
    finally:
        app.close()
        process.kill()
        process.wait()
        shutil.rmtree(directory, ignore_errors=True)
    table = Table(title=f"bytes per job, Redis {version}, {args.jobs:,} jobs of each kind")
    table.add_column("")
    for kind in results:
        table.add_column(kind, justify="right")
    for row in next(iter(results.values())):
        table.add_row(row, *(f"{figures[row]:,.0f}" for figures in results.values()))
    Console().print(table)


if __name__ == "__main__":
    sys.exit(main())
