"""arq: a no-op coroutine. Worker: ``arq bench.peer_tasks.arq.WorkerSettings``
(max_jobs 50; logging at WARNING through --custom-log-dict, no line per job)."""

from __future__ import annotations

import asyncio

from arq import create_pool
from arq.connections import RedisSettings

from bench.peer_tasks._common import URL, adone, agather, atimed_loop

SETTINGS = RedisSettings.from_dsn(URL)


async def noop(ctx, i: int) -> None:
    await adone()


class WorkerSettings:
    functions = [noop]
    redis_settings = SETTINGS
    max_jobs = 50


LOG_CONFIG = {  # for --custom-log-dict: like arq's default config, at WARNING
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"level": "WARNING", "class": "logging.StreamHandler"}},
    "loggers": {"arq": {"handlers": ["stderr"], "level": "WARNING"}},
}


async def _run(body):
    pool = await create_pool(SETTINGS)
    try:
        return await body(lambda i: pool.enqueue_job("noop", i))
    finally:
        await pool.aclose()


def enqueue_rate(seconds: float) -> tuple[float, float]:
    return asyncio.run(_run(lambda call: atimed_loop(call, seconds)))


def preload(n: int, variant: str) -> None:
    asyncio.run(_run(lambda call: agather(call, n)))
