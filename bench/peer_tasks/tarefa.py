"""tarefa: an async and a sync no-op task (TAREFA_URL is the bench's Redis).
Worker: ``tarefa worker bench.peer_tasks.tarefa:app -q peers -c 50``."""

from __future__ import annotations

import tarefa
from bench.peer_tasks._common import adone, done, timed_loop

app = tarefa.App()


@app.task(queue="peers")
async def noop(i: int) -> None:
    await adone()


@app.task(queue="peers_sync")
def noop_sync(i: int) -> None:
    done()


def enqueue_rate(seconds: float) -> tuple[float, float]:
    return timed_loop(noop.enqueue, seconds)


def preload(n: int, variant: str) -> None:
    task = noop_sync if variant == "sync" else noop
    for first in range(0, n, 1000):
        task.enqueue_many([(i,) for i in range(first, min(first + 1000, n))])
