"""Huey (RedisHuey): a no-op task.
Worker: ``huey_consumer bench.peer_tasks.huey.huey -k thread -w T -q``."""

from __future__ import annotations

from huey import RedisHuey

from bench.peer_tasks._common import URL, done, timed_loop

huey = RedisHuey("peers", url=URL)


@huey.task()
def noop(i: int) -> None:
    done()


def enqueue_rate(seconds: float) -> tuple[float, float]:
    return timed_loop(noop, seconds)


def preload(n: int, variant: str) -> None:
    for i in range(n):
        noop(i)
