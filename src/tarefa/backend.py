"""The backend contract: what the producers, job handles and queue handles
(task.py, job.py, app.py) ask of where jobs are kept. ``store.Store`` (Redis)
and ``testing.InlineStore`` (testing mode) both declare it, so a backend that
misses a call is a type error, not a surprise at run time.

Each call that waits on the backend comes as a pair with one naming rule: the
asyncio twin of ``name`` is ``aname``. The worker's calls and an operator's
reads are the Redis store's own (store/workers.py, store/browse.py).

A leaf, like records.py: it imports nothing of tarefa but the records and
the serializer's protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from .records import Enqueued, StoredJob
from .serializer import Serializer
from .tracing import Tracing

# (delay in ms, priority, key) of an enqueue: (0, 0, "") is "now, plain".
When = tuple[int, int, str]
# ('' | 'throttle' | 'debounce', window in ms, what it is per).
Window = tuple[str, int, str]
NO_WINDOW: Window = ("", 0, "")


class Producing(Protocol):
    """Adding jobs, and what a job's handle does with one job."""

    def enqueue(
        self, queue: str, job_id: str, when: When, fields: Sequence[Any],
        window: Window = NO_WINDOW, waits: int = 0, durable: bool = False,
    ) -> Enqueued: ...  # fmt: skip

    async def aenqueue(
        self, queue: str, job_id: str, when: When, fields: Sequence[Any],
        window: Window = NO_WINDOW, waits: int = 0, durable: bool = False,
    ) -> Enqueued: ...  # fmt: skip

    def enqueue_many(
        self, queue: str, when: When, jobs: Sequence[tuple[str, list[Any]]], durable: bool = False
    ) -> list[Enqueued]: ...

    async def aenqueue_many(
        self, queue: str, when: When, jobs: Sequence[tuple[str, list[Any]]], durable: bool = False
    ) -> list[Enqueued]: ...

    def wait_for(self, child: str, parents: Sequence[str]) -> None: ...

    async def await_for(self, child: str, parents: Sequence[str]) -> None: ...

    def job(self, queue: str, job_id: str) -> StoredJob | None: ...

    async def ajob(self, queue: str, job_id: str) -> StoredJob | None: ...

    def wait_end(self, queue: str, job_id: str, timeout: float | None) -> bytes: ...

    async def await_end(self, queue: str, job_id: str, timeout: float | None) -> bytes: ...

    def cancel(self, queue: str, job_id: str, keep_ms: int) -> bool: ...

    async def acancel(self, queue: str, job_id: str, keep_ms: int) -> bool: ...

    def retry(self, queue: str, job_id: str) -> None: ...

    async def aretry(self, queue: str, job_id: str) -> None: ...

    def run_now(self, queue: str, job_id: str) -> None: ...

    def delete(self, queue: str, ids: Sequence[str]) -> int: ...

    def progress(self, queue: str, job_id: str, token: bytes, progress: bytes) -> bool: ...

    async def aprogress(self, queue: str, job_id: str, token: bytes, progress: bytes) -> bool: ...


class Queues(Protocol):
    """What a queue's handle (``app.queue(name)``) and the App ask."""

    def queues(self) -> list[str]: ...

    def find_queues(self, job_id: str) -> list[str]: ...

    def counts(self, queue: str) -> dict[str, int]: ...

    def failed_ids(self, queue: str, limit: int = 100) -> list[str]: ...

    def purge(self, queue: str) -> int: ...

    def pause(self, queue: str) -> None: ...

    def resume(self, queue: str) -> bool: ...

    def is_paused(self, queue: str) -> bool: ...


class Backend(Producing, Queues, Protocol):
    """Everything the user's API needs of a backend."""


class Owner(Protocol):
    """What a task and a job's handle ask of the App that owns them: where
    its jobs are kept, how values become bytes, and its limits. The App
    declares it (app.py), so task.py and job.py need not import app.py,
    which imports them."""

    @property
    def backend(self) -> Backend: ...

    serializer: Serializer
    max_payload_bytes: int | None
    durable: bool
    on_commit: Callable[[Callable[[], object]], object] | None
    tracing: Tracing | None
