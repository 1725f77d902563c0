"""The transactional outbox (tarefa.outbox) on a real PostgreSQL and Redis:
jobs written in the caller's transaction, moved to Redis by the relay, once,
through crashes of the producer and of the relay, and outages of both."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import psycopg
import pytest

from tarefa import App, JobNotFound, JobState, outbox
from tarefa.outbox import Relay

from .conftest import PYTHONPATH, ROOT
from .tasks import add, record
from .waits import PATIENCE, wait_until


@pytest.fixture
def db(postgres, app):
    """A connection to a database whose outbox is empty (and installed)."""
    with psycopg.connect(postgres.url, autocommit=True) as setup:
        setup.execute("DROP TABLE IF EXISTS tarefa_outbox")
    with psycopg.connect(postgres.url) as connection:
        outbox.install(connection)
        connection.commit()
        yield connection


def rows(postgres) -> int:
    with psycopg.connect(postgres.url) as connection:
        return connection.execute("SELECT count(*) FROM tarefa_outbox").fetchone()[0]


@pytest.fixture
def relay_thread(app, postgres):
    """Start a Relay in a thread; stopped (and joined) after the test."""
    started = []

    def start(**options) -> Relay:
        relay = Relay(app, postgres.url, **options)
        thread = threading.Thread(target=relay.run)
        thread.start()
        started.append((relay, thread))
        return relay

    yield start
    for relay, thread in started:
        relay.stop()
        thread.join(PATIENCE)
        assert not thread.is_alive()


def test_a_committed_job_is_relayed_once_and_a_rolled_back_one_never(db, app, postgres):
    with db.transaction():
        db.execute("CREATE TEMP TABLE orders (id int)")
        job = outbox.enqueue(db, add, 2, 3)
    with pytest.raises(RuntimeError), db.transaction():
        dropped = outbox.enqueue(db, add, 1, 1)
        raise RuntimeError("the order failed")
    assert rows(postgres) == 1
    with pytest.raises(JobNotFound):  # not in Redis before the relay
        job.status  # noqa: B018
    relay = Relay(app, postgres.url)
    with psycopg.connect(postgres.url) as connection:
        assert relay.relay_once(connection) == 1
        assert relay.relay_once(connection) == 0
    assert job.status == JobState.QUEUED and rows(postgres) == 0
    assert app.backend.job("default", dropped.id) is None


def test_notify_wakes_the_relay_long_before_its_poll(db, app, relay_thread):
    relay_thread(poll=60)
    wait_until(lambda: _listening(db), "the relay to LISTEN")
    began = time.monotonic()
    with db.transaction():
        job = outbox.enqueue(db, add, 2, 3)
    wait_until(lambda: app.backend.job("default", job.id) is not None, "the job in Redis")
    assert time.monotonic() - began < 30  # its poll is 60 s: NOTIFY woke it


def _listening(db) -> bool:
    with db.transaction():
        query = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'"
        return db.execute(query).fetchone()[0] > 0


def test_options_travel_and_bad_input_writes_nothing(db, app, postgres):
    with db.transaction():
        later = outbox.enqueue(db, add.with_options(delay=600, queue="invoices"), 1, 2)
        named = outbox.enqueue(db, add.with_options(job_id="order-7"), 1, 2)
        again = outbox.enqueue(db, add.with_options(job_id="order-7"), 5, 5)  # adds nothing
        with pytest.raises(TypeError, match="add: .*'b'"):
            outbox.enqueue(db, add, 1)
        with pytest.raises(ValueError, match="the outbox cannot debounce"):
            outbox.enqueue(db, add.with_options(debounce=5, key="k"), 1, 2)
        with pytest.raises(ValueError, match="depends_on"):
            outbox.enqueue(db, add.with_options(depends_on=[named]), 1, 2)
    with pytest.raises(TypeError, match="needs a database connection"):
        outbox.enqueue(object(), add, 1, 2)
    assert rows(postgres) == 2
    with psycopg.connect(postgres.url) as connection:
        assert Relay(app, postgres.url).relay_once(connection) == 2
    assert later.queue == "invoices" and later.status == JobState.SCHEDULED
    assert named.status == JobState.QUEUED and again.id == named.id
    for bad in ({"batch": 0}, {"poll": 0}, {"poll": "5"}):
        with pytest.raises(ValueError):
            Relay(app, postgres.url, **bad)


def test_a_sqlalchemy_session_writes_in_its_own_transaction(db, app, postgres):
    import sqlalchemy
    from sqlalchemy.orm import Session

    engine = sqlalchemy.create_engine(
        postgres.url.replace("postgresql://", "postgresql+psycopg://")
    )
    with Session(engine) as session:
        job = outbox.enqueue(session, add, 4, 4)
        session.rollback()
        assert rows(postgres) == 0
        job = outbox.enqueue(session, add, 4, 4)
        session.commit()
    engine.dispose()
    with psycopg.connect(postgres.url) as connection:
        Relay(app, postgres.url).relay_once(connection)
    assert job.status == JobState.QUEUED


def test_a_producer_killed_after_its_commit_still_has_its_job_delivered(db, app, postgres, r):
    """The crash an on-commit hook cannot survive: the row is committed, the
    process dies before any enqueue; the relay delivers it."""
    script = textwrap.dedent(f"""
        import os, psycopg
        from tarefa import outbox
        from tests.tasks import record
        with psycopg.connect({postgres.url!r}) as db:
            with db.transaction():
                outbox.enqueue(db, record.with_options(job_id="after-crash"), "crash")
            os.kill(os.getpid(), 9)
    """)
    env = dict(os.environ, PYTHONPATH=PYTHONPATH)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, timeout=PATIENCE)
    assert done.returncode == -signal.SIGKILL and rows(postgres) == 1
    with psycopg.connect(postgres.url) as connection:
        Relay(app, postgres.url).relay_once(connection)
    assert app.job("after-crash").status == JobState.QUEUED


def test_a_relay_killed_mid_batch_makes_no_duplicate(db, app, postgres, r, run_worker):
    """SIGKILL a `tarefa relay` while it moves 6000 jobs, 100 per
    transaction; a second relay finishes. Each job runs once."""
    total = 6000
    with db.transaction(), db.cursor() as cursor:
        for i in range(total):
            outbox.enqueue(cursor.connection, record, f"j{i}")
    env = dict(os.environ, PYTHONPATH=PYTHONPATH, TAREFA_OUTBOX_URL=postgres.url)
    command = [sys.executable, "-m", "tarefa", "relay", "tests.tasks:app", "--batch", "100"]
    first = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: rows(postgres) < total - 500, "the relay to move some")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(PATIENCE)
    assert rows(postgres) > 0, "it finished before the kill: make the outbox bigger"
    second = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: rows(postgres) == 0, "the second relay to move the rest")
    finally:
        second.send_signal(signal.SIGTERM)
        _, stderr = second.communicate(timeout=PATIENCE)
    assert second.returncode == 0, stderr
    assert "outbox relay: stopped after" in stderr
    assert app.queue("default").counts()["queued"] == total
    run_worker(["default"], concurrency=50)
    runs = [tag.decode() for tag in r.lrange("test:runs", 0, -1)]
    assert len(runs) == total and len(set(runs)) == total


def test_postgres_and_redis_away_are_waited_out(db, app, postgres, relay_thread, caplog):
    """Postgres down: an enqueue fails in the caller, visibly; the relay waits
    and goes on once it is back. Redis refusing: the rows stay until it takes them."""
    relay = relay_thread(poll=0.2)
    postgres.stop()
    try:
        with pytest.raises(psycopg.OperationalError):
            with psycopg.connect(postgres.url, connect_timeout=5) as gone:
                outbox.enqueue(gone, add, 1, 1)
        wait_until(lambda: "outbox relay: OperationalError" in caplog.text, "the relay's warning")
    finally:
        postgres.restart()
    with psycopg.connect(postgres.url) as connection, connection.transaction():
        job = outbox.enqueue(connection, add, 1, 1)
    wait_until(lambda: app.backend.job("default", job.id) is not None, "the job relayed")
    relay.stop()

    elsewhere = App("redis://127.0.0.1:1", redis_timeout=0.5)  # nothing listens there
    with psycopg.connect(postgres.url) as connection:
        with connection.transaction():
            outbox.enqueue(connection, add, 2, 2)
        with pytest.raises(Exception, match="(?i)connect"):
            Relay(elsewhere, postgres.url).relay_once(connection)
        assert rows(postgres) == 1  # kept for when Redis is back
        assert Relay(app, postgres.url).relay_once(connection) == 1


def test_a_worker_relays_the_outbox_itself(db, app, postgres, spawn_worker, monkeypatch):
    """tarefa worker --relay-outbox: the outbox's jobs move and run, with no
    relay of their own; without TAREFA_OUTBOX_URL it is a usage error."""
    monkeypatch.delenv("TAREFA_OUTBOX_URL", raising=False)
    refused = spawn_worker("--relay-outbox", "--burst")
    assert refused.wait(PATIENCE) == 2
    assert "TAREFA_OUTBOX_URL" in refused.log_path.read_text()

    monkeypatch.setenv("TAREFA_OUTBOX_URL", postgres.url)
    worker = spawn_worker("--relay-outbox", "-p", "2")
    with db.transaction():
        job = outbox.enqueue(db, add, 20, 22)
    wait_until(lambda: app.backend.job("default", job.id) is not None, "the job relayed")
    assert job.result(timeout=PATIENCE) == 42 and rows(postgres) == 0
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(PATIENCE) == 0
