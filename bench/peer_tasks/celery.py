"""Celery with Redis as broker and result backend: a no-op task.
Worker: ``celery -A bench.peer_tasks.celery worker -P threads -c T``."""

from __future__ import annotations

from celery import Celery

from bench.peer_tasks._common import URL, done, timed_loop

app = Celery("peers", broker=URL, backend=URL)
app.conf.broker_connection_retry_on_startup = True  # silences a deprecation warning only


@app.task(name="peers.noop")
def noop(i: int) -> None:
    done()


def enqueue_rate(seconds: float) -> tuple[float, float]:
    return timed_loop(noop.delay, seconds)


def preload(n: int, variant: str) -> None:
    for i in range(n):
        noop.delay(i)
