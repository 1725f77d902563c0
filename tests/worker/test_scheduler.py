"""Cron tasks: each tick once however many workers run, one catch-up run for
ticks missed while no worker ran, and clear errors for bad schedules."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from datetime import UTC, datetime

import pytest

from tarefa import App
from tarefa.worker import Worker
from tarefa.worker.scheduler import prev_tick, tick_job_id

from ..conftest import wait_for_list
from ..tasks import every_second, hourly


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
        t.join(10)


def test_three_workers_run_each_tick_once(app, r):
    workers, threads = start_workers(app, ["cron-test"], 3)
    try:
        ran = wait_for_list(r, "test:cron", 3, timeout=10)  # three ticks, as they come
    finally:
        stop_workers(workers, threads)
    ran += [x.decode() for x in r.lrange("test:cron", 0, -1)]
    assert all(job_id.startswith(f"cron:{every_second.name}:") for job_id in ran)
    assert max(Counter(ran).values()) == 1  # no tick ran twice


def test_missed_ticks_run_once_at_start_up_not_as_a_burst(app, r):
    now = datetime.now(UTC)
    previous = prev_tick(hourly, now)
    # The schedule last ran three hours before the latest tick; workers were down.
    r.set(f"tarefa:{{cron-hourly}}:cron:{hourly.name}", previous - 3 * 3600)
    workers, threads = start_workers(app, ["cron-hourly"], 2)
    try:
        assert wait_for_list(r, "test:cron", 1, timeout=10) == [tick_job_id(hourly, previous)]
        nxt = app.job(tick_job_id(hourly, previous + 3600), queue="cron-hourly")
        assert nxt.status == "scheduled"  # the next tick waits for its time
    finally:
        stop_workers(workers, threads)
    assert r.llen("test:cron") == 0  # one catch-up run, not three


def test_a_first_deployment_schedules_the_next_tick_and_runs_nothing_now(app, r):
    workers, threads = start_workers(app, ["cron-hourly"], 1)
    try:
        deadline = time.monotonic() + 10
        while app.queue("cron-hourly").counts()["scheduled"] == 0:  # no event for it
            assert time.monotonic() < deadline, "the next tick was never scheduled"
            time.sleep(0.02)
    finally:
        stop_workers(workers, threads)
    next_id = tick_job_id(hourly, prev_tick(hourly, datetime.now(UTC)) + 3600)
    assert app.job(next_id, queue="cron-hourly").status == "scheduled"
    assert app.queue("cron-hourly").counts()["queued"] == 0
    assert r.llen("test:cron") == 0


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
