"""Counts of what happened to jobs, per queue and task: the figures behind
``/metrics`` and the dashboard's charts.

Each queue keeps its totals in one Redis hash, a field per event and task
(``completed|app.send_email``). Enqueues are counted by the script that adds
the job. Workers count what their jobs did in memory, as they do it, and add
it to the hash with each heartbeat: the job path costs Redis nothing more,
and a worker killed with SIGKILL loses at most one heartbeat's worth of
counts (never a job). The counts are of attempts as workers ran them: a job
that fails twice and then completes is started three times, retried twice and
completed once.

Once a minute the totals are also copied to the queue's history (the last 24
hours), which the charts read as differences between minutes.

One count is of jobs found lost: an id in the queue whose job is gone from
Redis (evicted under a maxmemory-policy other than noeviction, or deleted by
hand). The script that finds one counts it, as ``lost|`` with no task: the
task's name went with the job.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping

EVENTS = ("enqueued", "started", "completed", "failed", "retried")
LOST = "lost"  # jobs found gone (store/lua/includes/lost.lua): counted apart from EVENTS
# What a worker's outcome kind counts as (records.OutcomeKind's values).
ENDED_AS = {"completed": "completed", "failed": "failed", "retry": "retried"}

# Upper bounds (seconds) of the job duration histogram's buckets: from quick
# webhooks to hour-long document processing.
DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    900.0, 3600.0,
)  # fmt: skip
_BUCKET_NAMES = (*(f"le:{b:g}" for b in DURATION_BUCKETS), "le:+Inf")
DURATION_SUM_MS = "duration_ms"  # the sum of durations, in whole milliseconds


def field(name: str, task: str) -> str:
    """The hash field of one count: ``completed|task``. Split at the first
    ``|``: the names of counts have none, task names may."""
    return f"{name}|{task}"


def split_field(raw: str) -> tuple[str, str]:
    name, _, task = raw.partition("|")
    return name, task


def duration_bucket(seconds: float) -> str:
    """The histogram bucket a duration falls in (its count is per bucket, not
    cumulative; the exporter adds them up)."""
    return _BUCKET_NAMES[bisect.bisect_left(DURATION_BUCKETS, seconds)]


class WorkerStats:
    """What one worker's jobs did. ``unsent`` waits for the next heartbeat to
    go to Redis; ``total`` is everything since the worker started, for its own
    ``/metrics`` port."""

    def __init__(self) -> None:
        self.total: dict[str, Counter[str]] = defaultdict(Counter)  # by queue
        self.unsent: dict[str, Counter[str]] = defaultdict(Counter)

    def _add(self, queue: str, counts: Iterable[tuple[str, int]]) -> None:
        for name, n in counts:
            self.total[queue][name] += n
            self.unsent[queue][name] += n

    def started(self, queue: str, task: str) -> None:
        self._add(queue, [(field("started", task), 1)])

    def ended(self, queue: str, task: str, kind: str, seconds: float) -> None:
        """An attempt ended with outcome ``kind`` after ``seconds``."""
        self._add(queue, [
            (field(ENDED_AS[kind], task), 1),
            (field(duration_bucket(seconds), task), 1),
            (field(DURATION_SUM_MS, task), round(seconds * 1000)),
        ])  # fmt: skip

    def snapshot(self) -> dict[str, dict[str, int]]:
        """A copy of ``total``, safe to take from another thread (each copy
        of a dict is one step under the GIL)."""
        return {queue: dict(counts) for queue, counts in list(self.total.items())}

    def take_unsent(self) -> dict[str, Counter[str]]:
        unsent, self.unsent = self.unsent, defaultdict(Counter)
        return unsent

    def put_back(self, unsent: Mapping[str, Counter[str]]) -> None:
        """Counts that could not be sent (Redis unreachable): the next try sends them."""
        for queue, counts in unsent.items():
            self.unsent[queue].update(counts)
