"""The Django app: at start-up, it gives the project's App the on-commit hook
and puts database connection checks around every job."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.apps import AppConfig
from django.db import connections, transaction

from .settings import project_app


class TarefaConfig(AppConfig):
    name = "tarefa.contrib.django"
    label = "tarefa"
    verbose_name = "tarefa"

    def ready(self) -> None:
        app = project_app()
        app.on_commit = transaction.on_commit
        if fresh_connections not in app.job_scopes:
            app.around_each_job(fresh_connections)


@contextmanager
def fresh_connections() -> Iterator[None]:
    """What Django does around a request, around a job: a connection past
    CONN_MAX_AGE, or broken, is closed before the job and after it (the next
    query opens a new one). Connections are per thread: each job's are those of
    the thread that runs it. A connection inside a transaction is left alone
    (testing mode inside a TestCase runs jobs in the test's transaction)."""
    _close_old()
    try:
        yield
    finally:
        _close_old()


def _close_old() -> None:
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()
