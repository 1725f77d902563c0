"""RQ: a no-op job. Worker: ``rq worker -u URL peers`` (forks a work horse per
job) or with ``-w rq.SimpleWorker`` (runs jobs in the worker process)."""

from __future__ import annotations

import redis
from rq import Queue, get_current_job

from bench.peer_tasks._common import URL, done, timed_loop


def noop(i: int) -> None:
    done(get_current_job().connection)  # the worker's own connection


def _queue() -> Queue:
    return Queue("peers", connection=redis.Redis.from_url(URL))


def enqueue_rate(seconds: float) -> tuple[float, float]:
    queue = _queue()
    return timed_loop(lambda i: queue.enqueue(noop, i), seconds)


def preload(n: int, variant: str) -> None:
    queue = _queue()
    for first in range(0, n, 1000):
        queue.enqueue_many(
            [Queue.prepare_data(noop, (i,)) for i in range(first, min(first + 1000, n))]
        )
