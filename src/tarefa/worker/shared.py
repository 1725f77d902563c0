"""What the parts of a running worker share, built whole before any of them
starts (worker.py): its settings, the jobs it runs, the outcomes waiting to be
reported, and the two events every loop watches. Each part is given this,
never the Worker.

Everything here lives on the worker's event loop, except what the lease
keeper's thread reads (``running``, copied in one step under the GIL) and
``stop`` (set through ``loop.call_soon_threadsafe``).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..app import App
from ..limits import QueueSettings
from ..records import AttemptOutcome
from ..stats import WorkerStats
from ..store import Store
from .health import Health
from .job_log import JobLog
from .process_pool import ProcessPool
from .running import Lease, Running
from .waits import wait_set


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """A worker's settings, checked by ``Worker``."""

    id: str
    queues: tuple[str, ...]  # listed first, served first
    concurrency: int
    burst: bool
    lease_ms: int
    max_stalls: int
    grace: float  # seconds running jobs get to finish at shutdown
    settings: Mapping[str, QueueSettings]  # per queue: its limits (tarefa.limits)
    max_jobs: int | None = None  # jobs it starts before it stops (None: no limit)

    @property
    def beat(self) -> float:
        """Seconds between heartbeats and housekeeping passes: a lease / 4."""
        return self.lease_ms / 4000


@dataclass(slots=True)
class StopRequest:
    """Whether the worker was told to stop, and to stop now (no grace); or
    stopped by itself, as it ran its ``max_jobs`` (retired)."""

    requested: bool = False
    now: bool = False
    retired: bool = False


class Outcomes:
    """Outcomes of ended attempts, per queue, until a fetch reports them."""

    def __init__(self) -> None:
        self._held: dict[str, list[AttemptOutcome]] = defaultdict(list)
        self.processed = 0  # outcomes Redis has recorded

    def add(self, queue: str, attempt: AttemptOutcome) -> None:
        self._held[queue].append(attempt)

    def held(self, queue: str) -> list[AttemptOutcome]:
        """A copy of the queue's outcomes (more may come while it is sent)."""
        return list(self._held.get(queue, ()))

    def sent(self, queue: str, sent: list[AttemptOutcome], stale: int) -> None:
        """Redis took ``sent`` (recording all but ``stale`` of them): forget them."""
        del self._held[queue][: len(sent)]
        self.processed += len(sent) - stale

    def pending(self) -> bool:
        return any(self._held.values())

    def count(self) -> int:
        return sum(map(len, self._held.values()))


@dataclass(eq=False)
class Shared:
    app: App
    store: Store
    config: WorkerConfig
    loop: asyncio.AbstractEventLoop
    stop: StopRequest
    running: dict[Lease, Running]
    stats: WorkerStats  # what its jobs did, sent with each heartbeat
    job_log: JobLog
    processes: ProcessPool
    outcomes: Outcomes = field(default_factory=Outcomes)
    changed: asyncio.Event = field(default_factory=asyncio.Event)  # there may be work to do
    ending: asyncio.Event = field(default_factory=asyncio.Event)  # background loops must end
    memory_policy: str | None = None  # Redis's maxmemory-policy, once it says
    health: Health = field(default_factory=Health)  # kept by the lease keeper's thread

    def wake(self) -> None:
        """Have the exchange loop look again at once (something changed)."""
        self.changed.set()

    async def sleep(self, seconds: float) -> None:
        """Sleep, unless something changes meanwhile (a job ends, a stop)."""
        await wait_set(self.changed, seconds)

    async def wait_ending(self, seconds: float) -> bool:
        """Sleep; True (at once) if the background loops must end."""
        return await wait_set(self.ending, seconds)
