"""Faults of Redis: killed and restarted from its append-only file, and away
for ten seconds (refusing connections, or hanging like a partition), while
producers enqueue and workers fetch, report and renew their leases."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from tarefa import App, NotDurable
from tarefa.task import new_job_id


class Producer(threading.Thread):
    """Enqueues ``count`` jobs at a steady pace, as a web app would. An enqueue
    that fails is sent again with the same job id once Redis answers (the
    documented way: the id makes the retry unable to add the job twice).
    Each call waits at most ``TIMEOUT`` s per attempt, four attempts."""

    TIMEOUT = 1.0  # the App's redis_timeout: a hung Redis fails a call within about 4 s

    def __init__(
        self, harness, count: int, per_second: float, ms: float = 20, durable: bool = False
    ):
        super().__init__(daemon=True)
        self.count, self.pause, self.ms = count, 1 / per_second, ms
        self.app = App(harness.server.url, redis_timeout=self.TIMEOUT, durable=durable)
        self.acked: list[str] = []  # enqueues Redis acknowledged
        self.errors: list[Exception] = []
        self.slowest = 0.0  # seconds the longest enqueue call took, error or not

    def run(self) -> None:
        task = self.app.by_name("tests.faults.tasks:work")
        for _ in range(self.count):
            job_id = new_job_id()
            while True:
                began = time.monotonic()
                try:
                    task.with_options(job_id=job_id).enqueue(self.ms)
                    break
                except (redis.RedisError, NotDurable) as exc:
                    self.errors.append(exc)
                    time.sleep(0.2)  # back off, then send the same job again
                finally:
                    self.slowest = max(self.slowest, time.monotonic() - began)
            self.acked.append(job_id)
            time.sleep(self.pause)  # the pace of the requests that enqueue
        self.app.close()


def run_with_producer(h, count: int, faults, *, per_second: float = 400, durable=False):
    producer = Producer(h, count, per_second, durable=durable)
    for _ in range(3):  # serving before the enqueues begin: the count is not
        h.spawn_ready("-c", "8")  # spent while a loaded machine starts them
    producer.start()
    h.wait_for_runs(100)
    for fault in faults:
        fault()
        h.wait_for_runs(100)  # back at work before the next one
    producer.join(120)
    assert not producer.is_alive()
    h.jobs.extend(producer.acked)
    return producer


def test_redis_killed_mid_enqueue_and_restarted_from_its_aof(harness):
    """SIGKILL Redis three times while jobs are enqueued and run; every
    acknowledged enqueue survives the restart (the AOF is fsynced before the
    reply here: ``appendfsync always``)."""
    h = harness
    producer = run_with_producer(h, 2500, [lambda: h.redis_away(2, "kill")] * 3)
    h.account("3. Redis SIGKILLed, restarted from AOF, x3")
    assert producer.errors, "no enqueue met the outage: it tested nothing"


@pytest.mark.parametrize("how", ["kill", "stop"])
def test_redis_away_for_ten_seconds(harness, how):
    """Redis unreachable for 10 s under enqueues, fetches, outcomes and
    heartbeats: producers get errors (nothing is kept in memory for them),
    workers keep their outcomes and report them, or their jobs run again."""
    h = harness
    # 10 s of enqueues, and the 10 s outage in the middle of them.
    producer = run_with_producer(h, 1500, [lambda: h.redis_away(10, how)], per_second=150)
    what = "refusing" if how == "kill" else "hanging"
    h.account(f"4. Redis away 10 s ({what} connections)")
    assert producer.errors, "no enqueue met the outage: it tested nothing"
    # Four attempts of at most TIMEOUT each and the back-off between them (0.7 s),
    # with room for a loaded machine; the first one to meet the outage would
    # take about 10 s if it waited for Redis to come back.
    assert producer.slowest < 4 * Producer.TIMEOUT + 3, "an enqueue waited out the outage"
    for worker in h.workers:
        assert worker.poll() is None, "a worker gave up on Redis"


def test_the_sentinels_master_killed_under_durable_producers_and_workers(sentinel_harness):
    """A master with two replicas, and a sentinel: SIGKILL the master while
    producers enqueue durably (fsynced, and acknowledged by a replica) and
    workers run jobs. The sentinel promotes a replica; producers and workers
    follow it, and no acknowledged job is lost."""
    h = sentinel_harness
    producer = run_with_producer(h, 1500, [h.fail_over], per_second=200, durable=True)
    h.account("12. the sentinel's master SIGKILLed (durable enqueues)")
    assert producer.errors, "no enqueue met the failover: it tested nothing"


def test_a_cluster_master_killed_under_durable_producers_and_workers(cluster_harness):
    """A Redis Cluster of 3 masters with two replicas each: SIGKILL the master
    of the queue's slot while producers enqueue durably (fsynced, and
    acknowledged by a replica) and workers run jobs. The cluster promotes the replica;
    producers and workers read the slot map again, follow it, and no
    acknowledged job is lost."""
    h = cluster_harness
    producer = run_with_producer(h, 1500, [h.fail_over], per_second=200, durable=True)
    h.account("13. a cluster's master SIGKILLed (durable enqueues)")
    assert producer.errors, "no enqueue met the failover: it tested nothing"
