"""A producer against a Redis that hangs, goes away or loses a reply: it never
blocks for ever, never keeps a job to send later, and never makes a job twice.

The hang is a real one: the server process is stopped (SIGSTOP), so the kernel
still takes connections and requests and nothing ever answers, as with a
frozen machine or a partition.
"""

from __future__ import annotations

import asyncio
import signal
import time
from contextlib import contextmanager

import pytest
import redis

from tarefa import App, BackendUnavailable, RedisUnavailable, TarefaError
from tarefa.errors import RedisTimedOut

from ..proxy import Proxy
from ..tasks import add
from ..waits import wait_for_list, wait_until

TIMEOUT = 0.5  # App(redis_timeout=...) in these tests: an attempt gives up after it
ATTEMPTS = 4  # the first, and 3 retries 0.1, 0.2 and 0.4 s apart
BACKOFF = 0.1 + 0.2 + 0.4


@contextmanager
def stopped(server):
    """The server process stopped (SIGSTOP) for the block."""
    server.process.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        server.process.send_signal(signal.SIGCONT)


def producer(url: str, redis_timeout: float = TIMEOUT, **settings) -> tuple[App, object]:
    app = App(url, redis_timeout=redis_timeout, **settings)
    return app, app.task(add.fn, name="t:add")


def stored_jobs(server) -> dict[str, bytes]:
    """Every job on the server: id -> its payload."""
    client = redis.Redis(port=server.port)
    try:
        keys = client.keys("tarefa:{default}:job:*")
        return {k.decode().rsplit(":", 1)[1]: client.hget(k, "payload") for k in keys}
    finally:
        client.close()


def test_an_enqueue_to_a_hung_redis_fails_in_bounded_time_and_says_what_to_do(private_redis):
    server = private_redis()
    app, task = producer(server.url)
    first = task.enqueue(1, 1)  # connected, scripts loaded
    with stopped(server):
        began = time.monotonic()
        with pytest.raises(RedisUnavailable) as caught:
            task.enqueue(2, 2)
        took = time.monotonic() - began
    # Every attempt waited its timeout (it was retried), and no longer: 2 s for
    # a loaded machine, short of the 2.7 s a second round of attempts adds.
    assert ATTEMPTS * TIMEOUT <= took < ATTEMPTS * TIMEOUT + BACKOFF + 2
    error = caught.value
    job_id = error.job_id
    assert error.job_ids == [job_id] and job_id not in (None, first.id)
    # Still what callers caught before: a redis-py error, and now tarefa's too,
    # under the name every backend's outage has.
    assert isinstance(error, RedisTimedOut) and isinstance(error, BackendUnavailable)
    assert isinstance(error, redis.TimeoutError) and isinstance(error, redis.ConnectionError)
    assert isinstance(error, TarefaError)
    message = str(error)
    assert f"could not reach Redis at {server.url} after 4 attempts" in message
    assert f"job {job_id} of t:add may or may not have been enqueued" in message
    assert f".with_options(job_id={job_id!r}) is safe" in message

    # Enqueued again with its id, once Redis is back: one job, whatever Redis
    # made of the copies it had received while stopped.
    again = task.with_options(job_id=job_id).enqueue(2, 2)
    assert again.id == job_id
    assert stored_jobs(server) == {first.id: b"[[1,1],{}]", job_id: b"[[2,2],{}]"}
    assert app.queue("default").counts()["queued"] == 2


def test_aenqueue_to_a_hung_redis_fails_the_same_way(private_redis):
    server = private_redis()
    app, task = producer(server.url)

    async def produce():
        first = await task.aenqueue(1, 1)
        with stopped(server):
            began = time.monotonic()
            with pytest.raises(RedisUnavailable) as caught:
                await task.aenqueue(2, 2)
            took = time.monotonic() - began
        again = await task.with_options(job_id=caught.value.job_id).aenqueue(2, 2)
        return first, caught.value, took, again

    first, error, took, again = asyncio.run(produce())
    assert ATTEMPTS * TIMEOUT <= took < ATTEMPTS * TIMEOUT + BACKOFF + 2
    assert isinstance(error, redis.TimeoutError) and again.id == error.job_id
    assert f"job {error.job_id} of t:add may or may not have been enqueued" in str(error)
    assert stored_jobs(server) == {first.id: b"[[1,1],{}]", again.id: b"[[2,2],{}]"}


def test_a_batch_to_a_hung_redis_names_every_job_of_it(private_redis):
    server = private_redis()
    app, task = producer(server.url)
    task.enqueue(0, 0)
    with stopped(server), pytest.raises(RedisUnavailable) as caught:
        task.enqueue_many([(i, i) for i in range(3)])
    assert len(set(caught.value.job_ids)) == 3
    assert "3 jobs of t:add may or may not have been enqueued" in str(caught.value)
    for job_id, i in zip(caught.value.job_ids, range(3), strict=True):
        task.with_options(job_id=job_id).enqueue(i, i)
    assert app.queue("default").counts()["queued"] == 4


def test_a_refused_connection_fails_fast_and_hides_the_password():
    # Timeouts of 10 s: a call that waited one out would show it, well above
    # the back-off between refused attempts and a loaded machine's margin.
    app, task = producer("redis://:s3cret@127.0.0.1:1", redis_timeout=10)  # nothing listens
    began = time.monotonic()
    with pytest.raises(RedisUnavailable) as caught:
        task.enqueue(1, 2)
    assert time.monotonic() - began < BACKOFF + 5  # refused: no timeout to wait out
    assert not isinstance(caught.value, redis.TimeoutError)
    assert isinstance(caught.value, redis.ConnectionError)
    assert "redis://***@127.0.0.1:1" in str(caught.value) and "s3cret" not in str(caught.value)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_lost_reply_is_retried_with_the_same_id_and_makes_one_job(private_redis, mode):
    """Redis runs the enqueue, and its reply is lost on the way back: the call
    is retried, on a new connection, with the very same job id, so the retry
    finds the job the first attempt made instead of making a second one."""
    server = private_redis()
    proxy = Proxy(server.port)
    try:
        app, task = producer(proxy.url)

        async def produce():
            first = await task.aenqueue(1, 1)  # scripts loaded: the next call runs at once
            proxy.drop_reply_to(b"EVALSHA")
            return first, await task.aenqueue(2, 2)

        if mode == "sync":
            first = task.enqueue(1, 1)
            proxy.drop_reply_to(b"EVALSHA")
            second = task.enqueue(2, 2)
        else:
            first, second = asyncio.run(produce())
        assert proxy.dropped.is_set()  # Redis did answer the first attempt
        assert second.created  # its id was made here: the job found is its own
        assert stored_jobs(server) == {first.id: b"[[1,1],{}]", second.id: b"[[2,2],{}]"}
    finally:
        proxy.close()


@pytest.mark.parametrize("seconds", [0, -1, "3", None])
def test_redis_timeout_is_a_positive_number(seconds):
    with pytest.raises((TypeError, ValueError), match="redis_timeout must be"):
        App("redis://localhost", redis_timeout=seconds)


def test_job_result_waits_longer_than_the_reply_timeout(private_redis):
    server = private_redis()
    app, task = producer(server.url)
    job = task.enqueue(1, 2)  # no worker: it stays queued
    began = time.monotonic()
    with pytest.raises(TimeoutError, match="has not finished within 1.5 s"):
        job.result(timeout=1.5)  # one blocking wait of 1.5 s, over the 0.5 s timeout
    assert time.monotonic() - began >= 1.5

    async def wait():
        with pytest.raises(TimeoutError, match="has not finished within 1.5 s"):
            await job.aresult(timeout=1.5)

    asyncio.run(wait())


def test_a_worker_cut_off_from_redis_connects_again(private_redis, spawn_worker):
    """A worker whose connections lead nowhere (a partition, a failover, a NAT
    that forgot them) notices within its reply timeout and connects again,
    rather than wait on a dead connection for ever: here its heartbeat learns
    that its running job was cancelled, and stops it."""
    server = private_redis()
    proxy = Proxy(server.port)
    try:
        worker = spawn_worker("-c", "1", url=proxy.url)  # busy with one job: no idle wait
        app = App(server.url)
        job = app.by_name("tests.tasks:until_cancelled").enqueue("h")
        client = redis.Redis(port=server.port, socket_timeout=None)
        assert wait_for_list(client, "test:started", 1) == ["h"]
        # Redis's list of clients has no event to wait on: polled.
        wait_until(lambda: not job_calls(client), "the job to have its reply (it loops now)")
        proxy.cut_off()  # every connection the worker has: requests swallowed, no replies
        job.cancel()
        # The next heartbeat (every 5 s) times out (3 s), and its retry, on a
        # new connection, finds the lease gone: the job stops.
        assert wait_for_list(client, "test:runs", 1) == ["h stopped"]
        assert worker.poll() is None
    finally:
        proxy.close()


def test_an_idle_worker_cut_off_from_redis_waits_for_work_again(private_redis, spawn_worker):
    """An idle worker blocks in Redis waiting for work. Cut off, that wait ends
    by itself (its time plus the reply timeout), and the next one, on a new
    connection, wakes the worker as soon as a job comes: it does not fall back
    to its idle check."""
    server = private_redis()
    proxy = Proxy(server.port)
    try:
        # An idle check of 10 s: the cut-off wait lasts that long (plus the
        # reply timeout), and a job found by the check alone comes that late.
        spawn_worker("-c", "2", url=proxy.url, idle_check=10)
        app = App(server.url)
        record = app.by_name("tests.tasks:record")
        client = redis.Redis(port=server.port, socket_timeout=None)
        record.enqueue("before")
        assert wait_for_list(client, "test:runs", 1) == ["before"]
        wait_until(lambda: blocked_waits(client) and not job_calls(client), "the worker to idle")
        cut = {c["id"] for c in client.client_list()}
        proxy.cut_off()
        # The worker's new connection, blocked in its wait for work.
        wait_until(lambda: blocked_waits(client) - cut, "a new connection's wait for work")
        record.enqueue("after")
        assert wait_for_list(client, "test:runs", 1, timeout=5) == ["after"]
    finally:
        proxy.close()


def blocked_waits(client: redis.Redis) -> set[str]:
    """Ids of the connections blocked in a worker's wait for work."""
    return {c["id"] for c in client.client_list() if c["cmd"] == "bzpopmin" and "b" in c["flags"]}


def job_calls(client: redis.Redis) -> list[dict]:
    """The connections a job of tests/tasks.py opened, still open. A job closes
    its own once it has Redis's reply."""
    return [c for c in client.client_list() if c["cmd"] == "rpush"]
