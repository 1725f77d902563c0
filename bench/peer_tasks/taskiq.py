"""taskiq with taskiq-redis: RedisStreamBroker (acknowledged) and
RedisAsyncResultBackend, as taskiq-redis's README sets them up; a no-op task.
Worker: ``taskiq worker bench.peer_tasks.taskiq:broker --workers 1 --max-async-tasks 50``."""

from __future__ import annotations

import asyncio

from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker

from bench.peer_tasks._common import URL, adone, agather, atimed_loop

broker = RedisStreamBroker(url=URL).with_result_backend(RedisAsyncResultBackend(redis_url=URL))


@broker.task(task_name="peers.noop")
async def noop(i: int) -> None:
    await adone()


async def _run(body):
    await broker.startup()
    try:
        return await body(noop.kiq)
    finally:
        await broker.shutdown()


def enqueue_rate(seconds: float) -> tuple[float, float]:
    return asyncio.run(_run(lambda call: atimed_loop(call, seconds)))


def preload(n: int, variant: str) -> None:
    asyncio.run(_run(lambda call: agather(call, n)))
