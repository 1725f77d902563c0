"""A failover under running workers: the master dies with a lease its replica
never saw, the replica is promoted, and the job runs again there while the
worker that leased it on the old master still runs it. That stale worker,
once it reaches the new master, loses the job (its heartbeat is refused) and
its outcome is discarded; the live worker's outcome is the job's."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tarefa import App, JobState, current_job, manage
from tarefa.worker import Worker

from ..proxy import Proxy
from ..replication import Replicated
from ..waits import PATIENCE, wait_until


@pytest.fixture
def replicated(private_redis):
    pair = Replicated(private_redis(aof=False), private_redis(aof=False))
    yield pair
    pair.close()


class Side:
    """One worker's App and a task of the shared name that reports, through
    events, when it starts and when it learns it lost its lease."""

    def __init__(self, name: str, url: str):
        self.name = name
        self.app = App(url)
        self.started, self.release, self.lost = (threading.Event() for _ in range(3))

        @self.app.task(name="failover:work", retries=0)
        def work() -> str:
            self.started.set()
            while not self.release.wait(0.01):
                if current_job().cancelled:  # the heartbeat learnt the lease is lost
                    self.lost.set()
                    break
            return self.name

        # A heartbeat every 0.5 s; a short shutdown, should the test fail with Redis away.
        self.worker = Worker(self.app, concurrency=1, lease=2, grace=2)
        self.thread = threading.Thread(target=asyncio.run, args=(self.worker.run(),))

    def stop(self) -> None:
        self.release.set()
        self.worker.stop()
        self.thread.join(PATIENCE)
        self.app.close()


def wait(event: threading.Event, what: str, timeout: float = PATIENCE) -> None:
    assert event.wait(timeout), f"timed out after {timeout} s waiting for {what}"


def test_the_worker_a_failover_cut_off_loses_its_job_to_the_live_worker(replicated):
    # The stale worker reaches Redis through a stable address that the
    # failover moves; the live one starts on the promoted replica.
    front = Proxy(replicated.master.port)
    stale = Side("stale", front.url)
    live = None
    try:
        job = stale.app.enqueue("failover:work")
        replicated.synced()
        replicated.cut()
        stale.thread.start()
        wait(stale.started, "the stale worker to start the job")
        # The master dies with the lease; the stale worker cannot reach Redis
        # until the address leads to the new master.
        replicated.fail_over()
        live = Side("live", replicated.replica.url)
        live.thread.start()
        wait(live.started, "the live worker to run the job again")
        front.lead_to(replicated.replica.port)

        wait(stale.lost, "the stale worker's heartbeat to be refused")
        wait_until(
            lambda: not stale.worker.running and not stale.worker.pending(),
            "the stale worker to report its outcome",
        )
        assert job.status is JobState.ACTIVE  # its outcome was discarded
        live.release.set()
        assert job.result(timeout=PATIENCE) == "live"
        info = job.info()
        assert info.worker == live.worker.id
        assert manage.job_detail(live.app, job.id)["result"] == "live"
        assert not live.lost.is_set()
    finally:
        stale.stop()
        if live is not None:
            live.stop()
        front.close()
