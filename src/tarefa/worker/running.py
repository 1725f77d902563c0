"""The attempts a worker runs now, each known by its job's id and its lease's
token (the same id may come back under a new lease)."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from ..records import Leased

Lease = tuple[str, bytes]  # (job id, lease token)


@dataclass(slots=True)
class Running:
    queue: str
    job: Leased
    task: asyncio.Task[None] | None  # None: leased, never started (handed back)
    cancel: threading.Event | None = None  # what current_job().cancelled reads

    @property
    def lease(self) -> Lease:
        return self.job.id, self.job.token


def leases_by_queue(jobs: Iterable[Running]) -> dict[str, list[Lease]]:
    """(job id, lease token) pairs grouped by queue: one script call per queue."""
    by_queue: dict[str, list[Lease]] = defaultdict(list)
    for running in list(jobs):
        by_queue[running.queue].append(running.lease)
    return by_queue
