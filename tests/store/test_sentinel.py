"""redis+sentinel://: producers and workers find the master through a real
sentinel, and follow it when the master is killed and its replica promoted."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tarefa import App, BackendUnavailable
from tarefa.store.sentinel import parse
from tarefa.worker import Worker

from ..sentinel import SentinelSet
from ..tasks import add
from ..waits import PATIENCE, wait_until


@pytest.fixture
def sentinels(tmp_path):
    watched = SentinelSet(tmp_path)
    yield watched
    watched.close()


def test_a_sentinel_url_names_the_sentinels_the_service_and_the_masters_credentials():
    target = parse("redis+sentinel://user:p%40ss@10.0.0.1:26379,[::1]:26380/orders/2")
    assert target.sentinels == (("10.0.0.1", 26379), ("::1", 26380))
    assert (target.service, target.db) == ("orders", 2)
    assert (target.username, target.password) == ("user", "p@ss")
    assert target.tls is None and target.sentinel_password is None
    tls = parse("rediss+sentinel://h:1/s?ssl_ca_certs=/ca.pem&sentinel_password=x")
    assert tls.tls == {"ssl": True, "ssl_ca_certs": "/ca.pem"}
    assert tls.sentinel_password == "x" and tls.db == 0


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+sentinel://h:26379", "needs the name of the master"),
        ("redis+sentinel:///orders", "at least one sentinel"),
        ("redis+sentinel://h/orders", "a sentinel is host:port, not 'h'"),
        ("redis+sentinel://h:x/orders", "a sentinel is host:port, not 'h:x'"),
        ("redis+sentinel://h:1/orders/zero", "the database must be a number"),
        ("redis+sentinel://h:1/orders?socket_timeout=1", "does not take socket_timeout"),
    ],
)
def test_a_sentinel_url_that_names_no_master_is_refused_saying_why(url, says):
    with pytest.raises(ValueError, match=says):
        App(url)


def run_worker_until(app: App, done) -> Worker:
    """An in-process worker in a thread, stopped once ``done()``."""
    worker = Worker(app, ["default"], concurrency=4, lease=2)
    thread = threading.Thread(target=asyncio.run, args=(worker.run(),))
    thread.start()
    try:
        wait_until(done, "the jobs to complete")
    finally:
        worker.stop()
        thread.join(PATIENCE)
    assert not thread.is_alive()
    return worker


def test_producers_and_workers_find_the_master_through_the_sentinel(sentinels):
    app = App(sentinels.url)
    task = app.task(add.fn, name="t:add")
    jobs = [task.enqueue(i, 1) for i in range(20)]
    run_worker_until(app, lambda: all(j.status == "completed" for j in jobs))
    assert [j.result() for j in jobs] == [i + 1 for i in range(20)]
    master = sentinels.master.client()
    assert master.exists(f"tarefa:{{default}}:job:{jobs[0].id}")  # written on the master
    master.close()
    app.close()


def test_after_a_failover_producers_and_a_running_worker_go_on_with_the_new_master(sentinels):
    app = App(sentinels.url)
    task = app.task(add.fn, name="t:add")
    before = [task.enqueue(i, 1) for i in range(5)]
    worker = Worker(app, ["default"], concurrency=4, lease=2)
    thread = threading.Thread(target=asyncio.run, args=(worker.run(),))
    thread.start()
    try:
        wait_until(lambda: all(j.status == "completed" for j in before), "the first jobs")
        new_master = sentinels.fail_over()
        # The same App and the same running worker, with nothing restarted.
        after = [task.enqueue(i, 10) for i in range(5)]
        wait_until(
            lambda: all(j.status == "completed" for j in after), "the jobs after the failover"
        )
    finally:
        worker.stop()
        thread.join(PATIENCE)
    assert [j.result() for j in after] == [i + 10 for i in range(5)]
    client = new_master.client()
    assert client.exists(f"tarefa:{{default}}:job:{after[0].id}")
    client.close()
    app.close()


def test_aenqueue_follows_the_failover_too(sentinels):
    app = App(sentinels.url)
    task = app.task(add.fn, name="t:add")

    async def produce():
        first = await task.aenqueue(1, 1)
        sentinels.fail_over()
        second = await task.aenqueue(2, 2)
        return first, second

    first, second = asyncio.run(produce())
    client = sentinels.master.client()  # the new one
    assert client.exists(f"tarefa:{{default}}:job:{second.id}")
    client.close()
    app.close()


def test_a_service_the_sentinels_do_not_watch_is_an_outage_that_names_it(sentinels):
    app = App(sentinels.url.replace("/tarefa-test", "/no-such-service"), redis_timeout=0.5)
    task = app.task(add.fn, name="t:add")
    with pytest.raises(BackendUnavailable, match="no-such-service"):
        task.enqueue(1, 1)
    app.close()
