"""aenqueues from one event loop share its connection: the calls made while one
is on its way go to Redis together (store/autopipeline.py). Each caller still
gets its own job or its own error, nothing is answered before Redis replied,
and a Redis that stops answering fails every caller in bounded time."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest
import redis

from tarefa import Job, RedisUnavailable

from ..proxy import Proxy
from ..tasks import add
from .test_unreachable import ATTEMPTS, BACKOFF, TIMEOUT, producer, stopped, stored_jobs

MARK = 987654321  # an argument whose bytes arm the proxy on the batch that carries it


def payload(a: int, b: int) -> bytes:
    return b"[[%d,%d],{}]" % (a, b)


def test_gathered_aenqueues_each_get_their_own_job(app, r):
    async def produce():
        return await asyncio.gather(*(add.aenqueue(i, 2 * i) for i in range(100)))

    jobs = asyncio.run(produce())
    assert len({job.id for job in jobs}) == 100 and all(job.created for job in jobs)
    for i, job in enumerate(jobs):
        assert r.hget(f"tarefa:{{default}}:job:{job.id}", "payload") == payload(i, 2 * i)
    assert app.queue("default").counts()["queued"] == 100


def test_one_refused_call_among_gathered_ones_fails_alone(app, r):
    """Redis refuses one script call of the batch (the key of its job id holds
    a string, not a job): that caller gets the error, its neighbours their jobs."""
    r.set("tarefa:{default}:job:clash", "not a job")

    async def produce():
        calls = [add.aenqueue(i, i) for i in range(10)]
        calls.insert(5, add.with_options(job_id="clash").aenqueue(5, 5))
        calls.insert(7, add.aenqueue("not", "checked", "here"))  # too many arguments
        return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(produce())
    assert isinstance(results[5], redis.ResponseError) and "WRONGTYPE" in str(results[5])
    assert isinstance(results[7], TypeError)
    jobs = [result for n, result in enumerate(results) if n not in (5, 7)]
    assert all(isinstance(job, Job) and job.created for job in jobs)
    assert app.queue("default").counts()["queued"] == 10
    assert r.get("tarefa:{default}:job:clash") == b"not a job"


def test_gathered_aenqueues_after_a_script_flush_load_it_again(app, r):
    """Redis forgot the scripts (a restart, a failover): every call of the
    batch is told NOSCRIPT, and each loads the script and goes again."""

    async def produce():
        await add.aenqueue(0, 0)
        r.script_flush()
        return await asyncio.gather(*(add.aenqueue(i, i) for i in range(1, 21)))

    jobs = asyncio.run(produce())
    assert all(job.created for job in jobs)
    assert app.queue("default").counts()["queued"] == 21


def test_a_batch_whose_replies_are_lost_is_sent_again_and_makes_each_job_once(private_redis):
    """Redis runs the batch, and its replies are lost on the way back: the calls
    not answered are sent again on a new connection with the same ids, and find
    their jobs made."""
    server = private_redis()
    proxy = Proxy(server.port)
    try:
        app, task = producer(proxy.url)

        async def produce():
            await task.aenqueue(0, 0)  # connected, scripts loaded
            proxy.drop_reply_to(b"%d" % MARK)
            # The first call goes alone; the others, made meanwhile, in one batch.
            return await asyncio.gather(task.aenqueue(1, 1), *batch())

        def batch():
            return [task.aenqueue(MARK if i == 10 else i, i) for i in range(2, 20)]

        jobs = asyncio.run(produce())
        assert proxy.dropped.is_set()
        assert all(job.created for job in jobs)  # their ids were made here: their own jobs
        stored = stored_jobs(server)
        assert len(stored) == 20
        assert [stored[job.id] for job in jobs][:2] == [payload(1, 1), payload(2, 2)]
        assert stored[jobs[9].id] == payload(MARK, 10)
    finally:
        proxy.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once closed


def test_a_redis_gone_mid_batch_fails_every_caller_of_it(private_redis):
    """The batch went out, Redis ran it, and the connection broke before its
    replies came; Redis cannot be reached again: every caller of the batch is
    told its job may or may not have been enqueued, none is told it was."""
    server = private_redis()
    proxy = Proxy(server.port)
    try:
        app, task = producer(proxy.url)

        async def produce():
            await task.aenqueue(0, 0)
            proxy.drop_reply_to(b"%d" % MARK)
            proxy.lead_to(closed_port())  # new connections are refused
            calls = [task.aenqueue(MARK if i == 5 else i, i) for i in range(1, 11)]
            return await asyncio.gather(*calls, return_exceptions=True)

        results = asyncio.run(produce())
        assert proxy.dropped.is_set()
        first, batch = results[0], results[1:]
        assert isinstance(first, Job)  # answered before Redis went away
        assert all(isinstance(error, RedisUnavailable) for error in batch)
        ids = [error.job_id for error in batch]
        assert len(set(ids)) == 9 and first.id not in ids
        for error in batch:
            assert f"job {error.job_id} of t:add may or may not have been enqueued" in str(error)
        # Redis did run them: enqueued again with their ids, each is still one job.
        proxy.lead_to(server.port)
        for n, error in enumerate(batch, 2):
            again = task.with_options(job_id=error.job_id).enqueue(n, n)
            assert again.id == error.job_id
        assert len(stored_jobs(server)) == 11
    finally:
        proxy.close()


def test_gathered_aenqueues_to_a_hung_redis_all_fail_in_one_calls_time(private_redis):
    """Calls queued behind a batch that gets no answer are not made to wait
    out as many retries again: when its retries are spent, they fail too."""
    server = private_redis()
    app, task = producer(server.url)

    async def produce():
        await task.aenqueue(0, 0)
        with stopped(server):
            began = time.monotonic()
            results = await asyncio.gather(
                *(task.aenqueue(i, i) for i in range(1, 21)), return_exceptions=True
            )
            return results, time.monotonic() - began

    results, took = asyncio.run(produce())
    assert all(isinstance(error, RedisUnavailable) for error in results)
    assert len({error.job_id for error in results}) == 20
    # One call's time, and 2 s for a loaded machine: short of the 2.7 s more
    # that calls queued behind the batch would take, retried on their own.
    assert took < ATTEMPTS * TIMEOUT + BACKOFF + 2


def test_an_aenqueue_cancelled_before_it_was_sent_enqueues_nothing(app, r):
    async def produce():
        first = asyncio.create_task(add.aenqueue(1, 1))
        await asyncio.sleep(0)  # it is on its way: the next call waits its turn
        second = asyncio.create_task(add.aenqueue(2, 2))
        await asyncio.sleep(0)
        second.cancel()
        job = await first
        with pytest.raises(asyncio.CancelledError):
            await second
        return job, await add.aenqueue(3, 3)  # the connection is still in step

    first, third = asyncio.run(produce())
    assert app.queue("default").counts()["queued"] == 2
    assert r.hget(f"tarefa:{{default}}:job:{third.id}", "payload") == payload(3, 3)


def test_event_loops_in_threads_each_enqueue_on_their_own(app):
    """One connection per loop: loops running at once in several threads never
    share one."""
    errors: list[BaseException] = []

    def produce(n: int) -> None:
        async def gathered():
            jobs = await asyncio.gather(*(add.aenqueue(n, i) for i in range(50)))
            await app.store.aclose()
            return jobs

        try:
            assert len(asyncio.run(gathered())) == 50
        except BaseException as exc:  # reported by the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert app.queue("default").counts()["queued"] == 200
