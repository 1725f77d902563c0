"""Tasks for bench/stop_stress.py: jobs that run until cancelled, in each pool,
and quick ones for burst rounds. Each long job says it started by pushing to
``stress:started:<queue>``."""

from __future__ import annotations

import asyncio
import os
import time

import redis

import tarefa
from tarefa import current_job

app = tarefa.App()


def _started() -> None:
    job = current_job()
    redis.Redis.from_url(os.environ["TAREFA_URL"]).rpush(f"stress:started:{job.queue}", job.id)


@app.task(retries=0)
def long_sync() -> None:
    _started()
    while not current_job().cancelled:  # a thread cannot be stopped: it looks
        time.sleep(0.01)


@app.task(retries=0)
async def long_async() -> None:
    _started()
    await asyncio.sleep(600)


@app.task(retries=0, pool="process")
def long_process() -> None:
    _started()
    time.sleep(600)  # its process is killed


@app.task(retries=0)
def quick_sync(i: int) -> int:
    return i


@app.task(retries=0)
async def quick_async(i: int) -> int:
    await asyncio.sleep(0)
    return i


@app.task(retries=0, pool="process")
def quick_process(i: int) -> int:
    return i
