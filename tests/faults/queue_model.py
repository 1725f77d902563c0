"""What each job of one queue must be, in plain Python: the model the
state-machine test (test_invariants.py) holds the store to.

It follows the scripts' rules for states, not their data structures: which
state a job is in, its attempts, stalls and lease token, who holds its lease,
who waits for it. It does not keep the order of jobs within a ready list or
lane (tests/store covers that); the test learns which jobs a fetch leased
from its reply and checks that they could be leased.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

QUEUE = "q"
DUE_MS = 1  # a delay or back-off the test waits out on Redis's clock
FAR_MS = 3_600_000  # a delay, back-off, window or kept result no example outlives
FOREVER = -1  # a completed result kept forever (execution.FOREVER)
UNENDED = ("queued", "scheduled", "active", "waiting")  # cancel takes these


@dataclass(eq=False)
class Attempt:
    """One run of a job that a worker holds (its lease), current or not."""

    job_id: str
    token: bytes
    worker: str


@dataclass
class Job:
    id: str
    task: str
    payload: bytes
    priority: int = 0
    key: str = ""
    state: str = "queued"
    attempts: int = 0
    stalls: int = 0
    lease: int = 0  # the hash's fencing token: its current attempt's, or past it
    attempt: Attempt | None = None  # the current attempt, while active
    expired: bool = False  # active, and its lease ran out on Redis's clock
    due: bool = False  # scheduled, and its time has come on Redis's clock
    expires: tuple = ()  # completed and kept: the order results expire in (see finish)
    dependents: list[str] = field(default_factory=list)  # registered, not yet told

    @property
    def index(self) -> str | None:
        """The index that must hold the job (None: none, a cancelled job)."""
        if self.state == "queued":
            if self.key:
                return f"lane:{self.key}"
            return "prioritized" if self.priority else "ready"
        return None if self.state == "cancelled" else self.state


class QueueModel:
    def __init__(self, key_concurrency: int, max_stalls: int):
        self.key_concurrency = key_concurrency
        self.max_stalls = max_stalls
        self.jobs: dict[str, Job] = {}
        self.holders: dict[str, str] = {}  # de-duplication window -> id it keeps
        self.paused = False
        self.enqueued: Counter[str] = Counter()  # stats: jobs added, by task
        self.stalled_out: Counter[str] = Counter()  # stats: failed by stalls, by task

    # -- reading ------------------------------------------------------------------------

    def state(self, job_id: str) -> bytes:
        job = self.jobs.get(job_id)
        return job.state.encode() if job else b""

    def current(self, attempt: Attempt) -> bool:
        job = self.jobs.get(attempt.job_id)
        return job is not None and job.state == "active" and job.attempt is attempt

    def in_state(self, state: str) -> list[Job]:
        return [job for job in self.jobs.values() if job.state == state]

    def counts(self) -> dict[str, int]:
        counts = Counter(job.state for job in self.jobs.values())
        return {
            "queued": counts["queued"],
            "waiting": counts["waiting"],
            "scheduled": counts["scheduled"],
            "active": counts["active"],
            "completed": counts["completed"],
            "failed": counts["failed"],
        }

    def active_of_key(self, key: str) -> int:
        return sum(1 for job in self.in_state("active") if job.key == key)

    def lane_room(self, key: str) -> int:
        """How many of the key's queued jobs a fetch may start now."""
        queued = sum(1 for job in self.in_state("queued") if job.key == key)
        if not self.key_concurrency:
            return queued
        return max(0, min(queued, self.key_concurrency - self.active_of_key(key)))

    # -- producing ----------------------------------------------------------------------

    def add(self, job_id, task, payload, delay=0, priority=0, key="", waits=0) -> int | bytes:
        """add_job.lua: 1 when added, else the state of the job holding the id."""
        if job_id in self.jobs:
            return self.jobs[job_id].state.encode()
        job = Job(job_id, task, payload, priority=priority, key=key)
        job.state = "waiting" if waits else ("scheduled" if delay else "queued")
        self.jobs[job_id] = job
        self.enqueued[task] += 1
        return 1

    def enqueue(self, job_id, task, payload, delay, priority, key, window: str, per: str):
        """enqueue.lua, with its throttle and debounce windows (of FAR_MS)."""
        kept = self.holders.get(per) if window else None
        if window == "throttle" and kept is not None:
            return [kept.encode(), self.state(kept)]
        if window == "debounce":
            delay = max(delay, FAR_MS)
            if kept is not None and self.state(kept) == b"scheduled":
                # It takes the last call's fields, and waits the window again.
                job = self.jobs[kept]
                job.task, job.payload, job.due = task, payload, False
                return [kept.encode(), b"scheduled"]
        added = self.add(job_id, task, payload, delay, priority, key)
        if window and added == 1:
            self.holders[per] = job_id
        return added

    # -- the worker's calls -----------------------------------------------------------------

    def finish(self, attempt: Attempt, kind: str, ms: int) -> tuple[bool, list[str] | None]:
        """finish_job.lua: (applied, the ids told of its end or None). The test
        keeps each result a little longer than the one before (FAR_MS + a
        serial number), so results expire in the order they were kept, and
        those kept forever (by id, as the zset orders equal scores) last."""
        if not self.current(attempt):
            return False, None
        job = self.jobs[attempt.job_id]
        job.attempt, job.expired = None, False
        if kind == "retry":
            job.state, job.due = "scheduled", ms == 0
            return True, None
        if kind == "completed":
            job.state, job.payload = "completed", b""  # a completed job keeps no payload
            job.expires = (1, job.id) if ms == FOREVER else (0, ms)
            if ms == 0:
                del self.jobs[job.id]
        else:
            job.state = "failed"
        told, job.dependents = job.dependents, []
        return True, told or None

    def recover_expired(self) -> tuple[int, list[tuple[str, str, list[str]]]]:
        """recover_expired.lua, for every expired lease (the test keeps them
        few enough for one fetch to take them all): how many, and the jobs
        failed by stalls that others wait for, with those others' ids."""
        expired = [job for job in self.in_state("active") if job.expired]
        ended = []
        for job in expired:
            job.attempt, job.expired = None, False
            job.stalls += 1
            if job.stalls > self.max_stalls:
                job.state = "failed"
                self.stalled_out[job.task] += 1
                told, job.dependents = job.dependents, []
                if told:
                    ended.append((job.id, "failed", told))
            else:
                job.state = "queued"
        return len(expired), ended

    def keep_completed(self, keep: int) -> list[str]:
        """fetch.lua's keep_completed: the jobs beyond it deleted, those whose
        results expire soonest first."""
        completed = sorted(self.in_state("completed"), key=lambda job: job.expires)
        dropped = [job.id for job in completed[: max(0, len(completed) - keep)]] if keep else []
        for job_id in dropped:
            del self.jobs[job_id]
        return dropped

    def promote_due(self) -> None:
        for job in self.in_state("scheduled"):
            if job.due:
                job.state, job.due = "queued", False

    @staticmethod
    def tokens(first: int, jobs: list[Job]) -> list[int]:
        """The lease tokens a fetch gives the jobs it leases, from the first
        one's (the caller draws their base at random): one more for each job.
        A draw that hits a job's last token takes the next number; at one chance
        in 9 * 10^12, the test never meets one."""
        return [first + i for i in range(len(jobs))]

    def lease(self, job: Job, attempt: Attempt) -> None:
        job.state, job.attempt, job.expired = "active", attempt, False
        job.attempts += 1
        job.lease = int(attempt.token)

    def heartbeat(self, attempts: list[Attempt]) -> list[tuple[str, bytes]]:
        lost = []
        for attempt in attempts:
            if self.current(attempt):
                self.jobs[attempt.job_id].expired = False
            else:
                lost.append((attempt.job_id, attempt.token))
        return lost

    def requeue(self, attempts: list[Attempt]) -> int:
        count = 0
        for attempt in attempts:
            if self.current(attempt):
                job = self.jobs[attempt.job_id]
                job.state, job.attempt, job.expired = "queued", None, False
                job.attempts -= 1
                count += 1
        return count

    # -- jobs waiting for jobs --------------------------------------------------------------

    def register(self, parent_id: str, child_id: str) -> str | None:
        """add_dependent.lua then, for an ended parent, how it ended as the
        producer reports it (a missing parent counts as completed)."""
        parent = self.jobs.get(parent_id)
        if parent is not None and parent.state in UNENDED:
            parent.dependents.append(child_id)
            return None
        return parent.state if parent is not None else "completed"

    def resolve(self, outcome: str, children: list[str]) -> None:
        """resolve.lua for each child (each waits for one parent), and the
        cancellations that follow."""
        todo = [(outcome, children)]
        while todo:
            outcome, children = todo.pop()
            for child_id in children:
                child = self.jobs.get(child_id)
                if child is None or child.state != "waiting":
                    continue
                if outcome == "completed":
                    child.state = "queued"
                else:
                    todo.append(("cancelled", self._cancel(child)))

    # -- an operator's calls ----------------------------------------------------------------

    def _cancel(self, job: Job) -> list[str]:
        job.state, job.attempt, job.expired, job.due = "cancelled", None, False, False
        job.lease += 1
        told, job.dependents = job.dependents, []
        return told

    def cancel(self, job_id: str) -> int | bytes:
        job = self.jobs.get(job_id)
        if job is None or job.state not in UNENDED:
            return self.state(job_id)
        self.resolve("cancelled", self._cancel(job))
        return 1

    def retry(self, job_id: str) -> int | bytes:
        job = self.jobs.get(job_id)
        if job is None or job.state != "failed":
            return self.state(job_id)
        job.state, job.attempts, job.stalls = "queued", 0, 0
        return 1

    def delete(self, ids: list[str]) -> int:
        deleted, orphans = 0, []
        for job_id in ids:
            job = self.jobs.pop(job_id, None)
            if job is not None:
                deleted += 1
                orphans += job.dependents
        self.resolve("cancelled", orphans)
        return deleted

    def purge(self) -> None:
        self.jobs.clear()
        self.holders.clear()
