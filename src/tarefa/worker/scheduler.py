"""Cron: tasks that run on a schedule, once per tick however many workers run.

Every (non-burst) worker serving a cron task's queue keeps that task's next
tick enqueued ahead of time, as a delayed job whose id names the tick
(``cron:<task>:<tick>``), due at the tick on Redis's clock. The bookkeeping is
one script, ``cron_schedule.lua``, atomic and idempotent, so any number of
workers can call it: it advances the task's *mark* (the latest tick
scheduled) with the job, and never schedules a tick at or before the mark, so
a tick cancelled or run is never scheduled again.

At most one run per task waits to start. Shortly before a tick is due (its
lead: a second, or half the gap between ticks if shorter) a pass *settles*
it: if the run before it has still not started (the queue is paused or
busy), the tick's job is dropped, merged into that run, which runs once,
late. A pass comes then, and again once the tick is due, to schedule the next.

Ticks missed while no worker ran: one catch-up run, not a burst, unless a run
is still waiting (it covers the gap).

Time is Redis's: each pass reads the server's clock once (TIME) and computes
the ticks around it with croniter, in the task's time zone; sleeping between
passes uses the event loop's monotonic clock. The worker's wall clock is
never read.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from ..store import Store
from ..task import Task
from .reconnect import REDIS_ERRORS, Backoff
from .shared import Shared

log = logging.getLogger("tarefa.scheduler")

SETTLE_LEAD_MS = 1000  # a tick is settled this long before it is due (at most)
PASS_AFTER_MS = 10  # a pass comes this long after the time it is meant for


def cron_tasks(shared: Shared) -> list[Task[..., Any]]:
    """The cron tasks of the worker's queues."""
    queues = shared.config.queues
    return [
        task
        for task in shared.app.tasks.values()
        if task.options.cron and task.options.queue in queues and task.fn is not None
    ]


def next_tick(task: Task[..., Any], after: datetime) -> int:
    """The task's first tick after ``after``, in seconds since the epoch."""
    return _tick(task, after, "get_next")


def prev_tick(task: Task[..., Any], before: datetime) -> int:
    """The task's last tick before ``before``, in seconds since the epoch."""
    return _tick(task, before, "get_prev")


def _tick(task: Task[..., Any], start: datetime, step: str) -> int:
    """The nearest tick from ``start`` in the direction of ``step`` (croniter's
    get_next or get_prev), skipping the repeats of an hour that comes twice."""
    ticks = croniter(task.options.cron, start.astimezone(ZoneInfo(task.options.tz)))
    while True:
        tick = getattr(ticks, step)(datetime)
        if not _repeated(task, tick):
            return int(tick.timestamp())


def _repeated(task: Task[..., Any], tick: datetime) -> bool:
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


def tick_job_prefix(task: Task[..., Any]) -> str:
    """What the id of each of the task's tick's jobs starts with (the tick follows)."""
    return f"cron:{task.name}:"


def tick_job_id(task: Task[..., Any], tick: int) -> str:
    return f"{tick_job_prefix(task)}{tick}"


async def keep_scheduled(store: Store, task: Task[..., Any], now: datetime) -> tuple[int, int]:
    """One pass for one task at ``now`` (Redis's clock): settle the tick about
    to be due, catch up on missed ticks, schedule the next tick, all in
    cron_schedule.lua. Returns the next tick and its lead (ms)."""
    previous, tick = prev_tick(task, now), next_tick(task, now)
    lead_ms = min(SETTLE_LEAD_MS, (tick - previous) * 500)  # under half the gap
    _, fields = task._one((), {})  # the job a tick runs: the task, no arguments
    merged, caught_up, _ = await store.cron_schedule(
        task.options.queue, task.name, tick_job_prefix(task), previous, tick, lead_ms, fields
    )
    if merged:
        log.debug("%s: the previous run has not started; tick %s merged into it", task.name, merged)
    if caught_up:
        log.info("%s: ticks were missed; running once now", task.name)
    return tick, lead_ms


async def schedule_pass(store: Store, tasks: list[Task[..., Any]], now_ms: int) -> int | None:
    """Keep every task scheduled; returns when to pass again (Redis ms), None
    when no schedule is left. A schedule that fails to compute is dropped."""
    now = datetime.fromtimestamp(now_ms / 1000, UTC)
    wake = None
    for task in list(tasks):
        try:
            tick, lead_ms = await keep_scheduled(store, task, now)
        except REDIS_ERRORS:
            raise
        except Exception:  # one broken schedule must not stop the others
            log.exception("%s: cannot compute its next run; dropped", task.name)
            tasks.remove(task)
            continue
        # Pass again to settle the next tick (shortly before it is due), then
        # once it is due, to schedule the one after.
        settle = tick * 1000 - lead_ms
        due = (settle if now_ms < settle else tick * 1000) + PASS_AFTER_MS
        wake = due if wake is None else min(wake, due)
    return wake


async def cron_loop(shared: Shared) -> None:
    """A pass at start-up, then at each tick's settle time and just after it
    is due, all timed by Redis's clock (one TIME per pass): the worker's own
    clock is never read. Until the worker ends (``shared.ending``)."""
    tasks = cron_tasks(shared)
    backoff = Backoff()
    while tasks and not shared.ending.is_set():
        try:
            now_ms = await shared.store.time_ms()
            wake_ms = await schedule_pass(shared.store, tasks, now_ms)
        except REDIS_ERRORS as exc:
            await shared.wait_ending(backoff.next(exc))
            continue
        backoff.reset()
        if wake_ms is None:
            return
        await shared.wait_ending(max(0, wake_ms - now_ms) / 1000)
