"""Redis instructions per enqueue, counted by callgrind: the server's cost of
tarefa's enqueue script, steady to within a fraction of a percent between
runs whatever else the machine does (rates on a shared VM are not).

    .venv/bin/python bench/instructions.py             # 2,000 enqueues, 5,000 in batches
    PYTHONPATH=<other checkout>/src .venv/bin/python bench/instructions.py   # compare

Needs ``valgrind`` and ``redis-server`` on PATH. Only the instructions spent
inside script calls (EVAL/EVALSHA) are counted; a run with no enqueues is
subtracted, so start-up and the one warm-up enqueue cancel out.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import redis

PRODUCER = """
from tarefa import App
app = App(url={url!r})

@app.task
def send(to: str, n: int) -> None: ...

send.enqueue("warm-up", 0)
for b in range({batches}):
    send.enqueue_many([("ana@example.com", i) for i in range({batch})])
for i in range({singles}):
    send.enqueue("ana@example.com", i)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def script_instructions(singles: int, batches: int, batch: int = 1000) -> int:
    """Instructions Redis spends in script calls while a producer enqueues."""
    port, out = free_port(), tempfile.mktemp(suffix=".callgrind")
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--toggle-collect=evalGenericCommand",
         f"--callgrind-out-file={out}", "redis-server", "--port", str(port), "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 60
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)  # valgrind takes a few seconds to start the server
    url = f"redis://127.0.0.1:{port}/0"
    code = PRODUCER.format(url=url, batches=batches, batch=batch, singles=singles)
    subprocess.run([sys.executable, "-c", code], check=True, env=os.environ)
    try:
        client.shutdown(nosave=True)
    except redis.ConnectionError:
        pass  # the server closes the connection as it exits
    server.wait()
    with open(out) as f:
        total = int(re.search(r"^(?:summary|totals): (\d+)", f.read(), re.M).group(1))
    os.unlink(out)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--singles", type=int, default=2000, help="one-at-a-time enqueues")
    parser.add_argument("--batched", type=int, default=5000, help="jobs in batches of 1,000")
    args = parser.parse_args()
    for tool in ("valgrind", "redis-server"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found on PATH")
    base = script_instructions(0, 0)
    singles = script_instructions(args.singles, 0) - base
    batched = script_instructions(0, args.batched // 1000) - base
    print(f"Redis instructions per enqueue:               {singles / args.singles:,.0f}")
    print(f"Redis instructions per job in enqueue_many:   {batched / args.batched:,.0f}")


if __name__ == "__main__":
    main()
