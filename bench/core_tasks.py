"""Tasks for bench/core.py. The App reads TAREFA_URL (set by core.py to its own
redis-server) when it first talks to Redis; worker subprocesses get it from
their environment."""

from __future__ import annotations

import os
import time

import redis

import tarefa

app = tarefa.App()

LATENCY_KEY = "bench:latency"
_client: redis.Redis | None = None


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["TAREFA_URL"])
    return _client


@app.task(queue="bench", retries=0)
async def noop(i: int) -> None:
    """Does nothing, on the worker's event loop."""


@app.task(queue="bench_sync", retries=0)
def noop_sync(i: int) -> None:
    """Does nothing, in the worker's thread pool."""


@app.task(queue="latency", retries=0)
def stamp(t0: float) -> None:
    """Records seconds from just before the enqueue (``t0``) to now."""
    elapsed = time.time() - t0
    _redis().rpush(LATENCY_KEY, repr(elapsed))
