"""A transactional outbox: jobs written into the application's PostgreSQL
database in the caller's own transaction, and moved to Redis by a relay.

An on-commit hook (``enqueue_on_commit``) enqueues after the commit, so a
process that dies between the two loses the job. Here the job is a row
written with the rest of the transaction: it exists exactly when the
transaction commits. The relay (``Relay``: ``tarefa relay APP``) moves
committed rows to Redis, the row's id as the job's id, and deletes them; a
relay that dies between the two sends the rows again, and Redis keeps one job
per id, so nothing runs twice. ``NOTIFY`` wakes it at the commit; a slow poll
is the safety net::

    with psycopg.connect(DSN) as db:         # or a SQLAlchemy Session, or
        db.execute("INSERT INTO orders ...")  # Django's connection
        outbox.enqueue(db, send_invoice, order_id)

The table is made by ``install(connection)`` (or ``tarefa relay --install``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import groupby
from typing import TYPE_CHECKING, Any

from .job import Job

if TYPE_CHECKING:
    from .app import App
    from .task import Task

log = logging.getLogger("tarefa.outbox")

TABLE = "tarefa_outbox"
CHANNEL = "tarefa_outbox"  # NOTIFY'd by each enqueue, at its commit
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id text PRIMARY KEY,                 -- the job's id
    queue text NOT NULL,
    names text[] NOT NULL,               -- the job's fields, as enqueue sends them
    "values" bytea[] NOT NULL,
    run_at timestamptz NOT NULL,         -- now, or later for a delayed job
    priority integer NOT NULL,
    lane text NOT NULL,                  -- the key option
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS {TABLE}_created_at ON {TABLE} (created_at);
"""
_INSERT = f"""
INSERT INTO {TABLE} (id, queue, names, "values", run_at, priority, lane)
VALUES (%s, %s, %s, %s, now() + %s * interval '1 millisecond', %s, %s)
ON CONFLICT (id) DO NOTHING
"""
_NOTIFY = f"SELECT pg_notify('{CHANNEL}', '')"
_TAKE = f"""
SELECT id, queue, names, "values",
       GREATEST(0, EXTRACT(EPOCH FROM run_at - clock_timestamp()) * 1000)::bigint,
       priority, lane
FROM {TABLE} ORDER BY created_at LIMIT %s FOR UPDATE SKIP LOCKED
"""
_DELETE = f"DELETE FROM {TABLE} WHERE id = ANY(%s)"


def install(connection: Any) -> None:
    """Create the outbox table, if it is not there (commit it yourself, as
    any change in your transaction)."""
    with _cursor(connection) as cursor:
        cursor.execute(SCHEMA)


def enqueue(connection: Any, task: Task[..., Any], *args: Any, **kwargs: Any) -> Job[Any]:
    """Write one job of ``task`` into the outbox, in ``connection``'s current
    transaction; it reaches Redis once that commits, and never if it rolls
    back. Returns its handle at once (the job is in Redis once relayed).

    ``connection``: a psycopg (3 or 2) connection, Django's ``connection``
    (on PostgreSQL), or a SQLAlchemy ``Session`` or ``Connection`` (on
    psycopg). The arguments are checked as ``enqueue`` checks them; with
    ``job_id`` set, a second write of the same id adds nothing."""
    queue, job_id, (delay_ms, priority, lane), fields = task.prepare(*args, **kwargs)
    names = [str(name) for name in fields[::2]]
    values = [value.encode() if isinstance(value, str) else value for value in fields[1::2]]
    with _cursor(connection) as cursor:
        cursor.execute(_INSERT, (job_id, queue, names, values, delay_ms, priority, lane))
        cursor.execute(_NOTIFY)
    return Job(task.app, queue, job_id)


@contextmanager
def _cursor(connection: Any) -> Iterator[Any]:
    raw = _dbapi(connection)
    cursor = raw.cursor()
    try:
        yield cursor
    finally:
        cursor.close()


def _dbapi(connection: Any) -> Any:
    """The DB-API connection (``%s`` parameters) behind ``connection``."""
    if hasattr(connection, "cursor"):  # psycopg, Django's connection
        return connection
    if hasattr(connection, "get_bind"):  # a SQLAlchemy Session: its transaction's connection
        connection = connection.connection()
    raw = getattr(connection, "connection", None)  # a SQLAlchemy Connection's DB-API one
    if raw is not None and hasattr(raw, "cursor"):
        return raw
    raise TypeError(
        "outbox.enqueue needs a database connection: psycopg's, Django's, or a "
        f"SQLAlchemy Session or Connection, not {type(connection).__name__}"
    )


class Relay:
    """Moves committed outbox rows to Redis, oldest first, ``batch`` at a
    time: woken by the enqueues' NOTIFY, else every ``poll`` seconds. Several
    relays may run (each takes rows the others have not locked)."""

    def __init__(self, app: App, database_url: str, *, batch: int = 500, poll: float = 5.0):
        if not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be an int >= 1, not {batch!r}")
        if not isinstance(poll, int | float) or poll <= 0:
            raise ValueError(f"poll must be a number of seconds > 0, not {poll!r}")
        self.app, self.database_url, self.batch, self.poll = app, database_url, batch, poll
        self.relayed = 0  # jobs moved since it started
        self._stop = threading.Event()

    def stop(self) -> None:
        """End ``run`` (within about a second)."""
        self._stop.set()

    def run(self) -> None:
        """Relay until ``stop()``; a database or Redis outage is waited out."""
        import psycopg

        while not self._stop.is_set():
            try:
                with (
                    psycopg.connect(self.database_url, autocommit=True) as listener,
                    psycopg.connect(self.database_url) as db,
                ):
                    listener.execute(f"LISTEN {CHANNEL}")
                    while not self._stop.is_set():
                        if self.relay_once(db) < self.batch:
                            self._wait(listener)
            except Exception as exc:  # an outage: said, then tried again
                log.warning("outbox relay: %s: %s; trying again in 1 s", type(exc).__name__, exc)
                self._stop.wait(1.0)

    def relay_once(self, db: Any) -> int:
        """Move one batch of rows to Redis, in one transaction of ``db`` (a
        psycopg connection); how many were moved. Rows Redis did not take stay."""
        with db.transaction():
            rows = db.execute(_TAKE, (self.batch,)).fetchall()
            for (queue, delay_ms, priority, lane), group in groupby(rows, key=_destination):
                jobs = [(job_id, _fields(names, values)) for job_id, _, names, values, *_ in group]
                when = (int(delay_ms), int(priority), str(lane))
                self.app.backend.enqueue_many(queue, when, jobs, self.app.durable)
            if rows:
                db.execute(_DELETE, ([row[0] for row in rows],))
        self.relayed += len(rows)
        return len(rows)

    def _wait(self, listener: Any) -> None:
        """Until an enqueue's NOTIFY, ``poll`` seconds, or ``stop()``."""
        deadline = time.monotonic() + self.poll
        while not self._stop.is_set() and (left := deadline - time.monotonic()) > 0:
            for _ in listener.notifies(timeout=min(left, 1.0), stop_after=1):
                return


def _destination(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A taken row's queue, delay, priority and lane: its jobs go in one call."""
    return row[1], row[4], row[5], row[6]


def _fields(names: list[str], values: list[bytes]) -> list[str | bytes]:
    fields: list[str | bytes] = []
    for name, value in zip(names, values, strict=True):
        fields += [name, bytes(value)]
    return fields
