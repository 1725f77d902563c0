"""SAQ: a no-op coroutine. Worker: ``saq bench.peer_tasks.saq.settings``
(concurrency 50; SAQ's CLI logs at ERROR by default)."""

from __future__ import annotations

import asyncio

from saq import Queue

from bench.peer_tasks._common import URL, adone, agather, atimed_loop

queue = Queue.from_url(URL, name="peers")


async def noop(ctx, *, i: int) -> None:
    await adone()


settings = {"queue": queue, "functions": [noop], "concurrency": 50}


async def _run(body):
    q = Queue.from_url(URL, name="peers")
    await q.connect()
    try:
        return await body(lambda i: q.enqueue("noop", i=i))
    finally:
        await q.disconnect()


def enqueue_rate(seconds: float) -> tuple[float, float]:
    return asyncio.run(_run(lambda call: atimed_loop(call, seconds)))


def preload(n: int, variant: str) -> None:
    asyncio.run(_run(lambda call: agather(call, n)))
