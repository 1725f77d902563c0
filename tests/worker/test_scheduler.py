"""Cron tasks: each tick once however many workers run, one catch-up run for
ticks missed while no worker ran, ticks judged by Redis's clock, at most one
run waiting per task, no tick scheduled twice, daylight saving time, and clear
errors for bad schedules."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from tarefa import App
from tarefa.store.keys import queue_keys
from tarefa.worker import Worker, scheduler
from tarefa.worker.scheduler import next_tick, prev_tick, tick_job_id

from ..tasks import every_second, guard_sentinel, guarded, hold, hourly
from ..waits import PATIENCE, wait_for_list, wait_until


def start_workers(app, queues, count):
    workers = [Worker(app, queues, concurrency=2) for _ in range(count)]
    threads = [threading.Thread(target=asyncio.run, args=(w.run(),)) for w in workers]
    for t in threads:
        t.start()
    return workers, threads


def stop_workers(workers, threads):
    for w in workers:
        w.stop()
    for t in threads:
        t.join(PATIENCE)
    # Each stops: its loops end on an event, not on a cancellation that the
    # Redis client may swallow mid-call (which used to leave one idle for ever).
    assert not any(t.is_alive() for t in threads)


def redis_now(r) -> datetime:
    seconds, micros = r.time()
    return datetime.fromtimestamp(seconds + micros / 1e6, UTC)


def mark_key(task) -> str:
    return queue_keys(task.options.queue).cron_mark(task.name)


def mark(r, task) -> int | None:
    raw = r.get(mark_key(task))
    return int(raw) if raw else None


def ticks_of(job_ids) -> list[int]:
    return [int(job_id.rsplit(":", 1)[1]) for job_id in job_ids]


def test_three_workers_run_each_tick_once(app, r):
    workers, threads = start_workers(app, ["cron-test"], 3)
    try:
        ran = wait_for_list(r, "test:cron", 3)  # three ticks, as they come
    finally:
        stop_workers(workers, threads)
    ran += [x.decode() for x in r.lrange("test:cron", 0, -1)]
    assert all(job_id.startswith(f"cron:{every_second.name}:") for job_id in ran)
    assert max(Counter(ran).values()) == 1  # no tick ran twice


def test_missed_ticks_run_once_at_start_up_not_as_a_burst(app, r):
    now = redis_now(r)
    previous = prev_tick(hourly, now)
    # The schedule last ran three hours before the latest tick; workers were down.
    r.set(f"tarefa:{{cron-hourly}}:cron:{hourly.name}", previous - 3 * 3600)
    workers, threads = start_workers(app, ["cron-hourly"], 2)
    try:
        assert wait_for_list(r, "test:cron", 1) == [tick_job_id(hourly, previous)]
        nxt = app.job(tick_job_id(hourly, previous + 3600), queue="cron-hourly")
        assert nxt.status == "scheduled"  # the next tick waits for its time
    finally:
        stop_workers(workers, threads)
    assert r.llen("test:cron") == 0  # one catch-up run, not three


def test_a_first_deployment_schedules_the_next_tick_and_runs_nothing_now(app, r):
    workers, threads = start_workers(app, ["cron-hourly"], 1)
    try:
        wait_until(
            lambda: app.queue("cron-hourly").counts()["scheduled"], "the next tick to be scheduled"
        )
    finally:
        stop_workers(workers, threads)
    next_id = tick_job_id(hourly, prev_tick(hourly, redis_now(r)) + 3600)
    assert app.job(next_id, queue="cron-hourly").status == "scheduled"
    assert app.queue("cron-hourly").counts()["queued"] == 0
    assert r.llen("test:cron") == 0


@pytest.mark.parametrize("skew", [timedelta(hours=2, minutes=17), -timedelta(minutes=50)])
def test_ticks_are_judged_by_the_redis_clock_not_the_workers(app, r, monkeypatch, skew):
    class SkewedClock(datetime):
        """The worker's clock, off by ``skew``."""

        @classmethod
        def now(cls, tz=None):
            return datetime.now(tz) + skew

    monkeypatch.setattr(scheduler, "datetime", SkewedClock)
    before = redis_now(r)
    workers, threads = start_workers(app, ["cron-hourly"], 1)
    try:
        wait_until(lambda: mark(r, hourly) is not None, "the next tick to be scheduled")
    finally:
        stop_workers(workers, threads)
    tick = mark(r, hourly)
    assert tick in (next_tick(hourly, before), next_tick(hourly, redis_now(r)))
    # Due exactly at the tick, on the clock that promotes scheduled jobs.
    scheduled = queue_keys("cron-hourly").scheduled
    assert r.zscore(scheduled, tick_job_id(hourly, tick)) == tick * 1000
    assert r.llen("test:cron") == 0  # nothing ran early


def test_ticks_while_the_queue_is_paused_run_once_on_resume(app, r):
    queue = app.queue("cron-test")
    queue.pause()
    workers, threads = start_workers(app, ["cron-test"], 2)
    try:
        wait_until(lambda: mark(r, every_second) is not None, "the first tick")
        first = mark(r, every_second)
        wait_until(lambda: mark(r, every_second) >= first + 4, "four ticks to pass")
        counts = queue.counts()
        # The first tick's run waits; the ticks since merged into it, only the
        # next one is scheduled ahead.
        assert counts["queued"] + counts["scheduled"] <= 2, counts
        resumed = redis_now(r).timestamp()
        queue.resume()
        ran = wait_for_list(r, "test:cron", 2)  # the late run, then on time
    finally:
        stop_workers(workers, threads)
    ran += [x.decode() for x in r.lrange("test:cron", 0, -1)]
    ticks = ticks_of(ran)
    assert len([t for t in ticks if t < resumed]) == 1  # one run for the paused ticks
    assert len(set(ticks)) == len(ticks)


def test_ticks_while_the_queue_is_busy_run_once_when_it_frees(app, r):
    hold.with_options(queue="cron-test").enqueue("busy")  # takes the worker's one slot
    worker = Worker(app, ["cron-test"], concurrency=1)
    thread = threading.Thread(target=asyncio.run, args=(worker.run(),))
    thread.start()
    try:
        assert wait_for_list(r, "test:started", 1) == ["busy"]
        wait_until(lambda: mark(r, every_second) is not None, "the first tick")
        first = mark(r, every_second)
        wait_until(lambda: mark(r, every_second) >= first + 3, "three ticks to pass")
        freed = redis_now(r).timestamp()
        r.rpush("test:release:busy", 1)
        ran = wait_for_list(r, "test:cron", 2)
    finally:
        r.rpush("test:release:busy", 1)
        worker.stop()
        thread.join(PATIENCE)
    ran += [x.decode() for x in r.lrange("test:cron", 0, -1)]
    ticks = ticks_of(ran)
    assert len([t for t in ticks if t < freed]) == 1  # one run for the ticks held up
    assert len(set(ticks)) == len(ticks)


def test_a_cancelled_tick_is_never_scheduled_again(app, r):
    workers, threads = start_workers(app, ["cron-guard"], 1)
    try:
        wait_until(lambda: mark(r, guard_sentinel) is not None, "both schedules")
    finally:
        stop_workers(workers, threads)
    tick = mark(r, guarded)
    job = app.job(tick_job_id(guarded, tick), queue="cron-guard")
    assert job.cancel(keep=60)
    r.delete(queue_keys("cron-guard").job(job.id))  # its kept record expired
    # Make the sentinel look never deployed: its next run appearing again tells
    # that a restarted worker has been through both schedules.
    r.delete(mark_key(guard_sentinel), *r.keys("tarefa:{cron-guard}:job:cron:*guard_sentinel*"))
    workers, threads = start_workers(app, ["cron-guard"], 1)
    try:
        wait_until(lambda: mark(r, guard_sentinel) is not None, "the restarted worker's pass")
    finally:
        stop_workers(workers, threads)
    assert mark(r, guarded) >= tick
    assert not r.exists(queue_keys("cron-guard").job(job.id))
    assert r.zscore(queue_keys("cron-guard").scheduled, job.id) is None


def cron_task(cron: str, tz: str):
    return App("redis://unused").task(cron=cron, tz=tz)(lambda: None)


def utc(when: str) -> datetime:
    return datetime.fromisoformat(when).replace(tzinfo=UTC)


def ticks_from(task, start: str, count: int) -> list[str]:
    """``count`` ticks after ``start`` (UTC), as UTC times."""
    ticks, after = [], utc(start)
    for _ in range(count):
        tick = next_tick(task, after)
        ticks.append(datetime.fromtimestamp(tick, UTC).strftime("%Y-%m-%d %H:%M:%S"))
        after = datetime.fromtimestamp(tick, UTC)
    return ticks


@pytest.mark.parametrize(
    "tz, cron, start, expected",
    [
        # Lisbon, 2024-10-27: 02:00 WEST becomes 01:00 WET, so 01:30 comes twice
        # (00:30 and 01:30 UTC). A daily 01:30 runs at the first only.
        ("Europe/Lisbon", "30 1 * * *", "2024-10-25 12:00",
         ["2024-10-26 00:30:00", "2024-10-27 00:30:00", "2024-10-28 01:30:00"]),
        # New York, 2024-11-03: 01:30 EDT (05:30 UTC), then 01:30 EST (06:30 UTC).
        ("America/New_York", "30 1 * * *", "2024-11-02 12:00",
         ["2024-11-03 05:30:00", "2024-11-04 06:30:00"]),
        # Every hour: both copies of the repeated hour run, an hour apart.
        ("Europe/Lisbon", "30 * * * *", "2024-10-26 23:45",
         ["2024-10-27 00:30:00", "2024-10-27 01:30:00", "2024-10-27 02:30:00"]),
        # Every 20 s as well: the clock going back does not stop it for an hour.
        ("Europe/Lisbon", "* * * * * */20", "2024-10-27 00:59:30",
         ["2024-10-27 00:59:40", "2024-10-27 01:00:00", "2024-10-27 01:00:20"]),
    ],
)  # fmt: skip
def test_the_repeated_hour_when_clocks_go_back_runs_a_fixed_time_once(tz, cron, start, expected):
    assert ticks_from(cron_task(cron, tz), start, len(expected)) == expected


@pytest.mark.parametrize(
    "tz, cron, start, expected",
    [
        # Lisbon, 2024-03-31: 01:00 WET becomes 02:00 WEST; 01:30 never happens.
        # It runs at the change (02:00 WEST, 01:00 UTC), not a day later.
        ("Europe/Lisbon", "30 1 * * *", "2024-03-29 12:00",
         ["2024-03-30 01:30:00", "2024-03-31 01:00:00", "2024-04-01 00:30:00"]),
        # New York, 2024-03-10: 02:00 EST becomes 03:00 EDT; 02:30 runs at 03:00 EDT.
        ("America/New_York", "30 2 * * *", "2024-03-09 12:00",
         ["2024-03-10 07:00:00", "2024-03-11 06:30:00"]),
        # Every hour: the hour that does not exist is not made up for.
        ("Europe/Lisbon", "30 * * * *", "2024-03-31 00:00",
         ["2024-03-31 00:30:00", "2024-03-31 01:30:00", "2024-03-31 02:30:00"]),
    ],
)  # fmt: skip
def test_the_hour_skipped_when_clocks_go_forward_still_runs(tz, cron, start, expected):
    assert ticks_from(cron_task(cron, tz), start, len(expected)) == expected


@pytest.mark.parametrize(
    "tz, cron, start",
    [
        ("Europe/Lisbon", "30 1 * * *", "2024-10-25 12:00"),
        ("Europe/Lisbon", "30 1 * * *", "2024-03-29 12:00"),
        ("America/New_York", "30 1 * * *", "2024-11-01 12:00"),
        ("America/New_York", "30 2 * * *", "2024-03-08 12:00"),
        ("Europe/Lisbon", "30 * * * *", "2024-10-26 22:00"),
    ],
)
def test_previous_ticks_agree_with_next_ticks_across_transitions(tz, cron, start):
    task = cron_task(cron, tz)
    forward = [next_tick(task, utc(start))]
    for _ in range(5):
        forward.append(next_tick(task, datetime.fromtimestamp(forward[-1], UTC)))
    backward = [forward[-1]]
    for _ in range(5):
        backward.append(prev_tick(task, datetime.fromtimestamp(backward[-1], UTC)))
    assert backward[::-1] == forward


def test_a_start_inside_the_repeated_hour_does_not_run_it_again():
    # 01:15 WET (01:15 UTC) is in Lisbon's second 01:xx of 2024-10-27; 01:30 WEST ran.
    task = cron_task("30 1 * * *", "Europe/Lisbon")
    assert next_tick(task, utc("2024-10-27 01:15")) == int(utc("2024-10-28 01:30").timestamp())
    assert prev_tick(task, utc("2024-10-27 01:45")) == int(utc("2024-10-27 00:30").timestamp())


@pytest.mark.parametrize(
    "options, error, message",
    [
        ({"cron": "61 * * * *"}, ValueError, "cron must be a cron expression"),
        ({"cron": "0 * * * *", "tz": "Mars/Base"}, ValueError, "unknown time zone"),
        ({"cron": "0 0 30 2 *"}, ValueError, "never runs"),
    ],
)
def test_bad_schedules_are_refused_at_definition(options, error, message):
    with pytest.raises(error, match=message):
        App("redis://unused").task(**options)(lambda: None)


def test_a_cron_task_must_be_callable_without_arguments():
    app = App("redis://unused")
    with pytest.raises(TypeError, match="called with no arguments"):

        @app.task(cron="0 * * * *")
        def needs(account_id: int) -> None: ...


def test_cron_is_not_a_per_call_option():
    with pytest.raises(TypeError, match="cron is set on @app.task"):
        every_second.with_options(cron="0 0 * * *")
