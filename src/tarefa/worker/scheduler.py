"""Cron: tasks that run on a schedule, once per tick however many workers run.

Every (non-burst) worker serving a cron task's queue keeps that task's next
tick enqueued ahead of time, as a delayed job whose id names the tick
(``cron:<task>:<tick>``): the id de-duplicates, so the tick is enqueued once,
and it starts on time like any delayed job. Each worker then sleeps until the
tick has passed and schedules the one after.

Ticks missed while no worker ran: one catch-up run at start-up, not a burst,
unless the last scheduled tick is still waiting to run (it covers the gap).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from croniter import croniter

from ..task import Task
from .reconnect import REDIS_ERRORS, Backoff

if TYPE_CHECKING:
    from .worker import Worker

log = logging.getLogger("tarefa.scheduler")


def cron_tasks(worker: Worker) -> list[Task]:
    return [
        task
        for task in worker.app.tasks.values()
        if task.options.cron and task.options.queue in worker.queues and task.fn is not None
    ]


def next_tick(task: Task, after: datetime) -> int:
    """The task's first tick after ``after``, in seconds since the epoch."""
    ticks = croniter(task.options.cron, after.astimezone(ZoneInfo(task.options.tz)))
    while True:
        tick = ticks.get_next(datetime)
        if not _repeated(task, tick):
            return int(tick.timestamp())


def prev_tick(task: Task, before: datetime) -> int:
    """The task's last tick before ``before``, in seconds since the epoch."""
    ticks = croniter(task.options.cron, before.astimezone(ZoneInfo(task.options.tz)))
    while True:
        tick = ticks.get_prev(datetime)
        if not _repeated(task, tick):
            return int(tick.timestamp())


def _repeated(task: Task, tick: datetime) -> bool:
    """Whether ``tick`` is a second run at the same wall-clock time, in the hour
    that comes twice when clocks go back, of a schedule with fixed hours.

    croniter runs such a schedule at both (01:30 summer time, then 01:30 winter
    time, an hour later); a daily job would run twice. A schedule that runs
    every hour keeps both: they are an hour apart. (When clocks go forward,
    croniter runs a time that does not exist at the change: 01:30 runs at the
    moment 01:00 becomes 02:00.)"""
    local = datetime.fromtimestamp(tick.timestamp(), ZoneInfo(task.options.tz))
    return local.fold == 1 and not _every_hour(task.options.cron)


@lru_cache(maxsize=256)
def _every_hour(cron: str) -> bool:
    hours = croniter(cron).expanded[1]
    return hours == ["*"] or len(hours) == 24


def tick_job_id(task: Task, tick: int) -> str:
    return f"cron:{task.name}:{tick}"


async def schedule(task: Task, tick: int) -> None:
    """Enqueue the task's job for ``tick`` (de-duplicated by its id)."""
    delay = max(0.0, tick - datetime.now(UTC).timestamp())
    await task.with_options(job_id=tick_job_id(task, tick), delay=delay).aenqueue()
    await task.app.store.cron_mark(task.options.queue, task.name, tick)


async def catch_up(task: Task) -> None:
    """Run once now if ticks were missed while no worker ran."""
    store, queue = task.app.store, task.options.queue
    last = await store.cron_last(queue, task.name)
    previous = prev_tick(task, datetime.now(UTC))
    if last is None or last >= previous:
        return  # first deployment, or nothing missed
    pending = await store.ajob(queue, tick_job_id(task, last))
    if pending and pending.get("state") in (b"queued", b"scheduled", b"active"):
        return  # the last scheduled tick has yet to run: it covers the gap
    log.info("%s: missed ticks since %s; running once now", task.name, last)
    await schedule(task, previous)


async def cron_loop(worker: Worker) -> None:
    tasks = cron_tasks(worker)
    if not tasks:
        return
    backoff = Backoff()
    caught_up = False
    while tasks:
        try:
            if not caught_up:
                for task in tasks:
                    await catch_up(task)
                caught_up = True
            now = datetime.now(UTC)
            ticks = {}
            for task in list(tasks):
                try:
                    ticks[task] = next_tick(task, now)
                except Exception:  # one broken schedule must not stop the others
                    log.exception("%s: cannot compute its next run; dropped", task.name)
                    tasks.remove(task)
            for task, tick in ticks.items():
                await schedule(task, tick)
        except REDIS_ERRORS as exc:
            await asyncio.sleep(backoff.next(exc))
            continue
        backoff.reset()
        if not ticks:
            return
        # Sleep past the earliest tick (its job is already scheduled), then
        # schedule the next ones.
        await asyncio.sleep(max(0.0, min(ticks.values()) - datetime.now(UTC).timestamp()) + 0.01)
