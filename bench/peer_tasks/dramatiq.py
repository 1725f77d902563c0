"""Dramatiq with its Redis broker: a no-op actor.
Worker: ``dramatiq bench.peer_tasks.dramatiq --processes 1 --threads T``."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from bench.peer_tasks._common import URL, done, timed_loop

broker = RedisBroker(url=URL)
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="peers")
def noop(i: int) -> None:
    done()


def enqueue_rate(seconds: float) -> tuple[float, float]:
    return timed_loop(noop.send, seconds)


def preload(n: int, variant: str) -> None:
    for i in range(n):
        noop.send(i)
