"""Enqueue once a SQLAlchemy ``Session`` commits::

    with Session(engine) as session, session.begin():
        session.add(order)
        job = enqueue_on_commit(session, send_invoice, order.id)  # job.id known now

The job is sent when the session's outermost transaction commits, never if
it rolls back or is closed without a commit; one enqueued inside a savepoint
(``session.begin_nested()``) is dropped if that savepoint rolls back, and
otherwise waits for the outermost commit too.

How it tells: ``after_commit`` fires for the outermost commit and for each
savepoint released, and the transaction it fired for ends next
(``after_transaction_end``), so each transaction's end says whether it
committed. A savepoint released hands its jobs to the transaction around it;
the outermost one sends its jobs once it has committed and ended; any other
end (a rollback, ``close()``) drops them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from ..job import Job
from ..task import Task

P = ParamSpec("P")
R = TypeVar("R")

KEY = "tarefa.enqueue_on_commit"  # the session's pending jobs, in session.info
Send = Callable[[], object]


def enqueue_on_commit(
    session: Session, task: Task[P, R], /, *args: P.args, **kwargs: P.kwargs
) -> Job[R]:
    """Enqueue ``task(*args, **kwargs)`` once ``session``'s outermost
    transaction commits, and never if it (or the savepoint this is called
    in) rolls back. The arguments are checked now (TypeError, with nothing
    left pending) and the handle returned now, with the id the job will have.
    With no transaction begun yet, one is begun, as ``session.add`` would.

    At the commit, the session's jobs are sent in the order they were
    enqueued, each tried even if one before it failed; the first error is
    raised from ``commit()``, after the database committed. A process that
    dies between the commit and the enqueue loses the job.

    An ``AsyncSession``: pass its ``.sync_session``. The jobs are then sent
    during ``await session.commit()``, by the same blocking calls, in the
    event loop's thread."""
    if not isinstance(session, Session):
        raise TypeError(
            f"session must be a sqlalchemy.orm.Session, not {type(session).__name__} "
            "(a scoped_session: call it for its Session; an AsyncSession: its .sync_session)"
        )
    pending = _Pending.of(session)
    return task.enqueue_later(lambda send: pending.add(_current(session), send), *args, **kwargs)


def _current(session: Session) -> SessionTransaction:
    """The transaction a job enqueued now belongs to: the innermost savepoint,
    or the outermost transaction, begun if need be."""
    transaction = session.get_nested_transaction() or session.get_transaction()
    if transaction is not None:
        return transaction
    if not session.autobegin:
        raise RuntimeError(
            "enqueue_on_commit: the session has no transaction and autobegin is off: "
            "call session.begin() first"
        )
    return session.begin()


class _Pending:
    """A session's jobs, each with the transaction it waits for."""

    def __init__(self) -> None:
        self.jobs: dict[SessionTransaction, list[Send]] = {}
        self.committed = False  # after_commit fired: the transaction ending next committed

    @classmethod
    def of(cls, session: Session) -> _Pending:
        pending = session.info.get(KEY)
        if not isinstance(pending, _Pending):
            pending = session.info[KEY] = cls()
            event.listen(session, "after_commit", pending.after_commit)
            event.listen(session, "after_transaction_end", pending.after_transaction_end)
        return pending

    def add(self, transaction: SessionTransaction, send: Send) -> None:
        self.jobs.setdefault(transaction, []).append(send)

    def after_commit(self, session: Session) -> None:
        self.committed = True

    def after_transaction_end(self, session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is not None and not transaction.nested:
            return  # a subtransaction (a flush's): neither commits nor rolls back anything
        committed, self.committed = self.committed, False
        jobs = self.jobs.pop(transaction, [])
        if not committed or not jobs:
            return  # rolled back or closed: its jobs are dropped
        if transaction.nested:  # a savepoint released: its jobs wait for the one around it
            self.jobs.setdefault(_enclosing(transaction), []).extend(jobs)
        else:
            _send(jobs)


def _enclosing(transaction: SessionTransaction) -> SessionTransaction:
    """The savepoint or outermost transaction around a savepoint."""
    around = transaction.parent
    while around is not None and around.parent is not None and not around.nested:
        around = around.parent
    assert around is not None, "a savepoint is always inside a transaction"
    return around


def _send(jobs: list[Send]) -> None:
    errors: list[Exception] = []
    for send in jobs:
        try:
            send()
        except Exception as exc:
            errors.append(exc)
    if errors:
        first = errors[0]
        if len(errors) > 1:
            first.add_note(f"{len(errors) - 1} more of the commit's jobs failed to enqueue too")
        raise first
