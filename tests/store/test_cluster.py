"""tarefa on a Redis Cluster of real servers (tests/cluster.py): 3 masters
with a replica each. The queues below hash to slots on different masters.
What every backend does alike is in tests/contract/; here is what only a
cluster asks: a worker waiting on several masters, a master's failover
under an idle worker, durable enqueues acknowledged by a replica, the
operator's view of every master, and URLs."""

from __future__ import annotations

import asyncio
import threading

import pytest
from starlette.testclient import TestClient

from tarefa import App, BackendUnavailable, NotDurable, RedisFull, manage
from tarefa.store import check_url
from tarefa.store.acl import acl_rule
from tarefa.store.connection import Clients
from tarefa.web.server import create_app
from tarefa.worker import Worker

from ..cluster import Cluster
from ..redis_server import make_tls_files, tls_supported, waitaof_binary
from ..tasks import add
from ..waits import PATIENCE, drain, wait_until

QUEUES = ("emails", "pdfs", "invoices", "search")  # slots on masters 1, 2, 3, 2


def blocked_clients(node) -> int:
    client = node.client()
    try:
        return int(client.info("clients")["blocked_clients"])
    finally:
        client.close()


class Running:
    """A worker in a thread of its own, until ``stop()``."""

    def __init__(self, app: App, queues, **options):
        self.worker = Worker(app, queues, **options)
        self.thread = threading.Thread(target=asyncio.run, args=(self.worker.run(),))
        self.thread.start()

    def stop(self) -> None:
        self.worker.stop()
        self.thread.join(PATIENCE)
        assert not self.thread.is_alive()


@pytest.fixture
def on_cluster(app_on, shared_cluster):
    return app_on(shared_cluster)


def test_the_queues_spread_over_the_masters(shared_cluster):
    holders = {shared_cluster.master_of(f"tarefa:{{{q}}}:ready").port for q in QUEUES}
    assert len(holders) == 3  # (else the tests below would not cross masters)


def test_an_idle_worker_blocks_on_every_master_and_starts_each_queues_jobs(
    on_cluster, shared_cluster
):
    running = Running(on_cluster, QUEUES, concurrency=4)
    try:
        # One blocking wait per queue, each on its slot's master: no polling.
        wait_until(
            lambda: all(blocked_clients(m) >= 1 for m in shared_cluster.masters),
            "the worker to block on every master",
        )
        jobs = [add.with_options(queue=q).enqueue(i, 1) for i, q in enumerate(QUEUES)]
        assert [job.result(timeout=PATIENCE) for job in jobs] == [1, 2, 3, 4]
    finally:
        running.stop()


def test_cron_keeps_its_schedule_on_a_cluster(on_cluster):
    running = Running(on_cluster, ["cron-test"])
    try:
        queue = on_cluster.queue("cron-test")
        wait_until(lambda: queue.counts()["completed"] >= 2, "two ticks of every_second")
    finally:
        running.stop()
    assert queue.counts()["failed"] == 0


def test_the_operator_sees_the_queues_and_workers_of_every_master(on_cluster, shared_cluster):
    for q in QUEUES:
        add.with_options(queue=q).enqueue_many([(1, 1)] * 3)
    # One master's maxmemory set: the memory reported is that master's, the
    # one nearest to refusing jobs.
    fullest = shared_cluster.master_of("tarefa:{pdfs}:ready")
    client = fullest.client()
    client.config_set("maxmemory", 512 * 1024 * 1024)
    try:
        running = Running(on_cluster, ["idle"])
        try:
            wait_until(lambda: manage.workers(on_cluster), "the worker to register")
            with TestClient(create_app(on_cluster), base_url="http://localhost") as web:
                metrics = web.get("/metrics").text
                queues = {q["name"]: q for q in web.get("/api/v1/queues").json()}
        finally:
            running.stop()
    finally:
        client.config_set("maxmemory", 0)
        client.close()
    for q in QUEUES:
        assert queues[q]["counts"]["queued"] == 3
        assert f'tarefa_queue_jobs{{queue="{q}",state="queued"}} 3.0' in metrics
    assert "tarefa_redis_memory_max_bytes 5.36870912e+08" in metrics


def test_an_idle_worker_follows_a_master_failover(app_on, tmp_path):
    cluster = Cluster(tmp_path)
    try:
        app = app_on(cluster)
        running = Running(app, QUEUES, concurrency=4)
        try:
            wait_until(
                lambda: all(blocked_clients(m) >= 1 for m in cluster.masters),
                "the worker to block on every master",
            )
            cluster.fail_over(cluster.master_of("tarefa:{invoices}:ready"))
            # A producer's call fails while the slot has no master; once the
            # replica is promoted, both the producer and the worker reach it.
            job = wait_until(
                lambda: add.with_options(queue="invoices").enqueue(20, 1),
                "an enqueue on the promoted master",
                not_yet=(BackendUnavailable,),
            )
            assert job.result(timeout=PATIENCE) == 21
        finally:
            running.stop()
    finally:
        cluster.close()


@pytest.mark.parametrize("slot_map", ["fresh", "lagging"])
def test_a_graceful_failover_is_followed_without_an_error(app_on, tmp_path, monkeypatch, slot_map):
    """CLUSTER FAILOVER: the old master, now a replica, answers MOVED for the
    queue's slot. Producers (sync and asyncio) and a running worker go on at
    the new master; no call fails. The slot map a node gives can lag the
    failover for a moment ("lagging": reading it again changes nothing), so
    a call follows the address the MOVED reply names."""
    cluster = Cluster(tmp_path)
    try:
        app = app_on(cluster)
        task = add.with_options(queue="invoices")
        before = [task.enqueue(i, 0) for i in range(3)]
        asyncio.run(task.aenqueue(3, 0))  # (each has its connections to the old master now)
        running = Running(app, ["invoices"], concurrency=2)
        try:
            assert [job.result(timeout=PATIENCE) for job in before] == [0, 1, 2]
            if slot_map == "lagging":
                monkeypatch.setattr(Clients, "reread_slots", lambda self: None)
                monkeypatch.setattr(Clients, "areread_slots", _reread_nothing)
            cluster.hand_over(cluster.master_of("tarefa:{invoices}:ready"))
            after = [task.enqueue(i, 10) for i in range(3)]

            async def produce():
                return [await task.aenqueue(i, 20) for i in range(3)]

            after += asyncio.run(produce())
            monkeypatch.undo()
            results = [job.result(timeout=PATIENCE) for job in after]
        finally:
            running.stop()
        assert results == [10, 11, 12, 20, 21, 22]
    finally:
        cluster.close()


async def _reread_nothing(self) -> None:
    return None


def test_a_full_master_refuses_its_queues_jobs_and_the_others_go_on(on_cluster, shared_cluster):
    """maxmemory reached on one master: an enqueue to a queue of its slots
    raises RedisFull naming the queue and the job, sync and asyncio alike,
    and queues on the other masters take jobs as before."""
    client = shared_cluster.master_of("tarefa:{invoices}:ready").client()
    client.config_set("maxmemory", 1)
    try:
        with pytest.raises(RedisFull) as caught:
            add.with_options(queue="invoices").enqueue(1, 1)
        assert caught.value.queue == "invoices" and len(caught.value.job_ids) == 1
        with pytest.raises(RedisFull):
            asyncio.run(add.with_options(queue="invoices").aenqueue(1, 1))
        assert add.with_options(queue="pdfs").enqueue(1, 1).created  # another master
    finally:
        client.config_set("maxmemory", 0)
        client.close()
    assert add.with_options(queue="invoices").enqueue(1, 1).created


@pytest.mark.skipif(waitaof_binary() is None, reason="needs a Redis with WAITAOF (7.2+)")
def test_a_durable_enqueue_returns_once_a_replica_has_the_job(app_on, tmp_path):
    cluster = Cluster(tmp_path, path=waitaof_binary(), aof=True)
    try:
        app = app_on(cluster)
        job = add.with_options(queue="invoices", durable=True).enqueue(1, 2)
        holder = cluster.master_of("tarefa:{invoices}:ready")
        replica = next(n for n in cluster.replicas if _master_port(n) == holder.port)
        client = replica.client()
        try:
            client.execute_command("READONLY")  # (a replica serves reads of its slots)
            assert client.exists(f"tarefa:{{invoices}}:job:{job.id}") == 1  # already replicated
        finally:
            client.close()
        app.durable_replicas = 2  # more than there are: said, and the job stays enqueued
        app.close()
        app._store = None
        with pytest.raises(NotDurable, match="1 of the 2 replica"):
            add.with_options(queue="invoices", durable=True).enqueue(2, 2)
        assert app.queue("invoices").counts()["queued"] == 2
    finally:
        cluster.close()


def _master_port(node) -> int:
    client = node.client()
    try:
        return int(client.info("replication")["master_port"])
    finally:
        client.close()


def test_an_acl_user_with_tarefas_cluster_rule_produces_and_works(app_on, shared_cluster):
    rule = acl_rule("tarefa", "pw", cluster=True)
    for node in shared_cluster.nodes:
        client = node.client()
        client.execute_command("ACL", "SETUSER", *rule.split())
        client.close()
    app = app_on(shared_cluster)
    app.close()  # (the same App, as the ACL user)
    app._url = shared_cluster.url.replace("redis+cluster://", "redis+cluster://tarefa:pw@")
    jobs = [add.with_options(queue=q).enqueue(1, 1) for q in QUEUES]
    drain(Worker(app, QUEUES, burst=True))
    assert [job.result(timeout=0) for job in jobs] == [2] * len(QUEUES)


@pytest.mark.skipif(not tls_supported(), reason="this redis-server was built without TLS")
def test_a_cluster_over_tls_runs_jobs(app_on, tmp_path):
    """rediss+cluster://: the client and the nodes (bus and replication) speak
    TLS; the certificate is checked against the URL's ssl_ca_certs."""
    cluster = Cluster(tmp_path, tls=make_tls_files(tmp_path / "tls"))
    try:
        app = app_on(cluster)
        assert app.store.url.startswith("rediss+cluster://")
        jobs = [add.with_options(queue=q).enqueue(1, 2) for q in QUEUES]
        drain(Worker(app, QUEUES, burst=True))
        assert [job.result(timeout=0) for job in jobs] == [3] * len(QUEUES)
    finally:
        cluster.close()


@pytest.mark.parametrize(
    "url, says",
    [
        ("redis+cluster://", "needs at least one node as host:port"),
        ("redis+cluster://localhost", "a node is host:port, not 'localhost'"),
        ("redis+cluster://localhost:6379/2", "has one database, 0"),
        ("redis+cluster://localhost:6379?db=2", "does not take db"),
    ],
)
def test_a_bad_cluster_url_is_refused_saying_why(url, says):
    with pytest.raises(ValueError, match=says):
        check_url(url)
    with pytest.raises(ValueError, match=says):
        App(url=url)
