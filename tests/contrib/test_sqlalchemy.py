"""tarefa.contrib.sqlalchemy: jobs enqueued once a real SQLAlchemy Session
commits (SQLite in a file of the test's own), never on a rollback, a
savepoint's jobs dropped with it; a real Redis, and a real worker that finds
the committed row."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
import redis
from sqlalchemy import create_engine, event, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, scoped_session

from tarefa import App, JobState
from tarefa.contrib.sqlalchemy import KEY, enqueue_on_commit
from tarefa.worker import Worker

app = App()  # the shop's jobs (TAREFA_URL: the test session's Redis)


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    item: Mapped[str]


@app.task(retries=0)
def order_exists(db: str, order_id: int) -> bool:
    """What a job after a commit does: read the row the transaction wrote."""
    with sqlite3.connect(db) as connection:
        found = connection.execute("SELECT 1 FROM orders WHERE id = ?", (order_id,))
        return found.fetchone() is not None


@app.task
def add(a: int, b: int) -> int:
    return a + b


@pytest.fixture(autouse=True)
def shop(r):
    """The shop's App, on the test session's freshly flushed Redis."""
    app._store = None
    yield app
    app.close()


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "shop.sqlite3")


@pytest.fixture
def engine(db):
    engine = create_engine(f"sqlite:///{db}")

    # SQLite's driver begins no transaction before a SAVEPOINT: SQLAlchemy
    # emits BEGIN itself, so that savepoints nest (SQLAlchemy's SQLite docs).
    @event.listens_for(engine, "connect")
    def no_driver_begin(dbapi_connection, record):
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def begin(connection):
        connection.exec_driver_sql("BEGIN")

    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


def sent(job) -> bool:
    return app.backend.job(job.queue, job.id) is not None


def items(engine) -> list[str]:
    with Session(engine) as session:
        return list(session.scalars(select(Order.item).order_by(Order.id)))


def test_the_job_is_sent_at_the_commit_and_finds_its_row(engine, db):
    with Session(engine) as session, session.begin():
        order = Order(item="book")
        session.add(order)
        session.flush()
        job = enqueue_on_commit(session, order_exists, db, order.id)
        assert not sent(job)  # the handle, with its id, before the job exists
    assert job.status == JobState.QUEUED  # the same id, sent at the commit
    assert app.queue("default").counts()["queued"] == 1
    asyncio.run(Worker(app, ["default"], burst=True).run())
    assert job.result(timeout=0) is True  # the row was there when the job ran


def test_a_rollback_or_a_close_without_commit_sends_nothing(engine):
    with Session(engine) as session:
        session.add(Order(item="lamp"))
        rolled_back = enqueue_on_commit(session, add, 1, 2)
        session.rollback()
        session.add(Order(item="desk"))
        with pytest.raises(RuntimeError), session.begin_nested():
            in_failed_block = enqueue_on_commit(session, add, 3, 4)
            raise RuntimeError("the request failed")
        session.rollback()
        closed = enqueue_on_commit(session, add, 5, 6)
    assert not session.in_transaction()
    with session:  # the same session, used again: the dropped jobs stay dropped
        session.add(Order(item="chair"))
        committed = enqueue_on_commit(session, add, 7, 8)
        session.commit()
    assert [sent(job) for job in (rolled_back, in_failed_block, closed)] == [False] * 3
    assert sent(committed) and app.queue("default").counts()["queued"] == 1
    assert items(engine) == ["chair"]


def test_a_savepoint_rolled_back_drops_only_its_jobs(engine):
    with Session(engine) as session:
        session.add(Order(item="outer"))
        outer = enqueue_on_commit(session, add, 0, 0)
        with session.begin_nested():  # released: its jobs wait for the outermost commit
            session.add(Order(item="released"))
            released = enqueue_on_commit(session, add, 1, 1)
            try:
                with session.begin_nested():  # rolled back, inside a released one
                    session.add(Order(item="inner dropped"))
                    inner_dropped = enqueue_on_commit(session, add, 2, 2)
                    raise ValueError("invalid line item")
            except ValueError:
                pass
            after = enqueue_on_commit(session, add, 3, 3)  # the released savepoint's again
        assert not any(sent(job) for job in (outer, released, after))  # not at a release
        savepoint = session.begin_nested()
        session.add(Order(item="dropped"))
        dropped = enqueue_on_commit(session, add, 4, 4)
        savepoint.rollback()
        session.commit()
    assert [sent(job) for job in (outer, released, after)] == [True] * 3
    assert not sent(inner_dropped) and not sent(dropped)
    assert items(engine) == ["outer", "released"]  # the database agrees


def test_the_arguments_are_checked_at_the_call_and_nothing_is_left_pending(engine):
    with Session(engine) as session:
        with pytest.raises(TypeError, match="add: .*'b'"):
            enqueue_on_commit(session, add, 1)
        assert not session.in_transaction()  # the failed call began nothing
        session.add(Order(item="pen"))
        session.commit()
        assert session.info[KEY].jobs == {}
    assert app.queue("default").counts()["queued"] == 0
    with pytest.raises(TypeError, match="scoped_session: call it"):
        enqueue_on_commit(scoped_session(lambda: Session(engine)), add, 1, 2)


def test_two_commits_on_one_session_each_send_their_own_jobs(engine):
    with Session(engine) as session:
        first = enqueue_on_commit(session, add, 1, 1)  # no transaction yet: one is begun
        assert session.in_transaction()
        session.add(Order(item="first"))
        session.commit()
        assert sent(first) and app.queue("default").counts()["queued"] == 1
        second = enqueue_on_commit(session, add.with_options(job_id="order-2"), 2, 2)
        session.add(Order(item="second"))
        session.commit()
        assert second.id == "order-2" and sent(second)
        session.commit()  # nothing pending: nothing sent again
    assert app.queue("default").counts()["queued"] == 2  # each job once


def test_every_job_is_tried_and_the_first_error_reaches_the_commit(engine):
    elsewhere = App("redis://127.0.0.1:1", redis_timeout=0.5)  # nothing listens there
    unreachable = elsewhere.task(add.fn, name="t:add")
    with Session(engine) as session:
        session.add(Order(item="mug"))
        enqueue_on_commit(session, unreachable, 1, 1)
        kept = enqueue_on_commit(session, add, 2, 2)
        with pytest.raises(redis.ConnectionError):
            session.commit()
        assert not session.in_transaction()
    assert items(engine) == ["mug"]  # committed before the enqueue failed
    assert sent(kept)  # the job after the failed one was still sent


def test_a_session_without_autobegin_needs_a_transaction(engine):
    with Session(engine, autobegin=False) as session:
        with pytest.raises(RuntimeError, match="call session.begin"):
            enqueue_on_commit(session, add, 1, 2)
        with session.begin():
            job = enqueue_on_commit(session, add, 1, 2)
    assert sent(job)
