"""An idle worker's blocking wait for work (store/blocking.py): one write of a
blocking pop and the fetches behind it, on a connection of its own. It leases
what an enqueue makes ready, ends at once when unblocked, never reads a reply
meant for a wait that was cut short, and gives up on a hung Redis in bounded
time."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis

from tarefa import App
from tarefa.store import REDIS_ERRORS

from ..tasks import add
from ..waits import PATIENCE
from .test_unreachable import stopped

WORKER = "test-worker"


async def wait_for_work(app: App, blocker, timeout: float):
    """One wait on the default queue: the ids it leased."""
    fetched, errors = await app.store.wait_then_fetch(
        blocker, ["default"], timeout, WORKER, want=10, lease_ms=30_000, max_stalls=3
    )
    assert errors == []
    return [job.id for _, got in fetched for job in got.jobs]


async def connected(app: App):
    """A blocking connection, connected, with the scripts loaded (a worker's
    first fetch loads them; a wait that finds them missing loads them and
    leases nothing)."""
    blocker = app.store.blocking_connection()
    await wait_for_work(app, blocker, 0.01)
    return blocker


async def blocked(r) -> None:
    """Until Redis holds the wait blocked."""
    deadline = time.monotonic() + PATIENCE
    while r.info("clients")["blocked_clients"] < 1:
        assert time.monotonic() < deadline, "the wait never blocked"
        await asyncio.sleep(0.01)


def test_a_wait_leases_the_job_enqueued_while_it_blocks(app, r):
    async def scenario():
        blocker = await connected(app)
        try:
            waiting = asyncio.create_task(wait_for_work(app, blocker, PATIENCE))
            await blocked(r)
            job = await add.aenqueue(1, 2)
            began = time.monotonic()
            leased = await waiting
            return job.id, leased, time.monotonic() - began
        finally:
            await blocker.aclose()

    job_id, leased, took = asyncio.run(scenario())
    assert leased == [job_id]
    assert took < PATIENCE / 2  # woken by the enqueue, not by the wait's end
    assert app.job(job_id).info().state == "active"


def test_unblock_ends_a_wait_at_once_and_the_connection_serves_the_next(app, r):
    async def scenario():
        blocker = await connected(app)
        try:
            waiting = asyncio.create_task(wait_for_work(app, blocker, PATIENCE))
            await blocked(r)
            began = time.monotonic()
            await app.store.unblock(blocker)
            first = await waiting
            took = time.monotonic() - began
            job = await add.aenqueue(3, 4)
            second = await wait_for_work(app, blocker, PATIENCE)
            return first, took, job.id, second
        finally:
            await blocker.aclose()

    first, took, job_id, second = asyncio.run(scenario())
    assert first == [] and took < PATIENCE / 2
    assert second == [job_id]


def test_a_cancelled_wait_leaves_nothing_blocked_in_redis(app, r):
    """A wait cut short drops its connection: Redis forgets the blocked pop,
    so the fetch behind it cannot lease the next job for a wait no one reads
    (that job would sit leased until its lease ran out)."""

    async def scenario():
        blocker = await connected(app)
        try:
            waiting = asyncio.create_task(wait_for_work(app, blocker, PATIENCE))
            await blocked(r)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            assert blocker.id is None
            job = await add.aenqueue(5, 6)
            return job.id, await wait_for_work(app, blocker, PATIENCE)
        finally:
            await blocker.aclose()

    job_id, leased = asyncio.run(scenario())
    assert leased == [job_id]
    assert r.info("clients")["blocked_clients"] == 0


def test_a_wait_after_redis_lost_its_scripts_loads_them_and_the_next_leases(app, r):
    async def scenario():
        blocker = app.store.blocking_connection()
        try:
            job = await add.aenqueue(7, 8)  # the queue's first fetch is yet to come
            r.script_flush()
            first = await wait_for_work(app, blocker, 0.01)
            second = await wait_for_work(app, blocker, 0.01)
            return job.id, first, second
        finally:
            await blocker.aclose()

    job_id, first, second = asyncio.run(scenario())
    assert first == [] and second == [job_id]


def test_a_wait_on_a_hung_redis_gives_up_in_bounded_time_then_connects_afresh(private_redis):
    server = private_redis()
    app = App(server.url, redis_timeout=0.5)
    task = app.task(add.fn, name="t:add")

    async def scenario():
        blocker = await connected(app)
        try:
            with stopped(server):
                began = time.monotonic()
                with pytest.raises(REDIS_ERRORS) as caught:
                    await wait_for_work(app, blocker, 0.2)
                took = time.monotonic() - began
            job = await task.aenqueue(1, 1)
            return caught.value, took, job.id, await wait_for_work(app, blocker, PATIENCE)
        finally:
            await blocker.aclose()

    error, took, job_id, leased = asyncio.run(scenario())
    assert isinstance(error, redis.TimeoutError)
    assert 0.7 <= took < 0.7 + 5  # the wait's 0.2 s and one reply timeout, not for ever
    assert leased == [job_id]
    app.close()
