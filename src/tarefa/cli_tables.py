"""Rich tables the command line prints."""

from __future__ import annotations

import time
from collections.abc import Iterable

from rich.table import Table

from .store import Store

STATES = ("queued", "scheduled", "active", "completed", "failed")


def queues_table(store: Store, queues: Iterable[str]) -> Table:
    table = Table(title="queues")
    table.add_column("queue")
    for state in STATES:
        table.add_column(state, justify="right")
    for queue in queues:
        counts = store.counts(queue)
        table.add_row(queue, *(str(counts[s]) for s in STATES))
    return table


def workers_table(workers: list[dict[str, str]]) -> Table:
    table = Table(title="workers")
    for column in ("worker", "queues", "running", "concurrency", "up"):
        table.add_column(column)
    now = time.time() * 1000
    for w in workers:
        up = int((now - int(w.get("started_at", now))) / 1000)
        table.add_row(w["id"], w.get("queues", ""), w.get("running", "0"),
                      w.get("concurrency", ""), f"{up} s")  # fmt: skip
    return table
