"""The ``InlineStore``: testing mode's in-memory stand-in for the Redis store.

An enqueue adds the job, then leases it, runs it through the worker's own
``execute()`` and records its outcome, each step as the scripts would; see
``tarefa.testing`` for what differs from a worker.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from ..backend import NO_WINDOW, When, Window
from ..errors import JobNotFound, WrongState
from ..records import Added, Enqueued, Leased, Outcome, OutcomeKind, StoredJob
from ..serializer import dump_error
from ..store import split_ref, stored_job, token_base
from ..worker.execution import execute
from .inline import INLINE, run_blocking

if TYPE_CHECKING:
    from ..app import App
    from ..backend import Backend

RUNNABLE = (b"queued", b"scheduled", b"active")  # states a job has not ended in
WORKER_ID = b"inline"  # JobInfo.worker of an inline run


def _now_ms() -> int:
    return int(time.time() * 1000)


def _as_bytes(value: Any) -> bytes:
    """A field value as Redis would hand it back."""
    if isinstance(value, bytes):
        return value
    return value.encode() if isinstance(value, str) else str(value).encode()


def _task_of(fields: Sequence[Any]) -> str:
    """The task name among a job's fields (name/value pairs)."""
    name: str = fields[list(fields[::2]).index("task") * 2 + 1]
    return name


def _parent_results(job: Mapping[str, bytes]) -> list[bytes | None] | None:
    """fetch.lua's: the results of a group callback's parents, in their order,
    as ``_release`` kept them on the job (None when the job takes none)."""
    spec = orjson.loads(job["parents"]) if "parents" in job else {}
    if not spec.get("takes_results"):
        return None
    return [job.get(f"parent:{parent}") for parent in spec["parents"]]


class InlineStore:
    """An in-memory stand-in for ``store.Store``: the calls that producers, job
    handles and queue handles make, with the replies Redis would give, over jobs
    that run inline. A job is kept as its Redis hash would be (field -> bytes),
    so ``JobInfo`` and ``Job.result()`` read it with their own code."""

    def __init__(self, app: App):
        self.app = app
        self._jobs: dict[str, dict[str, dict[str, bytes]]] = {}  # queue -> id -> hash
        self._expires: dict[tuple[str, str], int] = {}  # (queue, id) -> ms: kept until
        self._failed: dict[str, dict[str, int]] = {}  # queue -> id -> order of failure
        self._paused: set[str] = set()
        # (queue, task and key) -> the job a throttle window keeps, and until when (ms)
        self._throttled: dict[tuple[str, str], tuple[str, int]] = {}
        self._running: dict[tuple[str, str], threading.Event] = {}  # -> its cancel event
        self._order = itertools.count()
        self._lock = threading.RLock()  # jobs may be enqueued from several threads
        self._included = False

    def __repr__(self) -> str:
        return f"<InlineStore {sum(map(len, self._jobs.values()))} jobs>"

    # -- producing ---------------------------------------------------------

    # ``durable`` changes nothing here: there is no disk to wait for.

    def enqueue(
        self, queue: str, job_id: str, when: When, fields: Sequence[Any],
        window: Window = NO_WINDOW, waits: int = 0, durable: bool = False,
    ) -> Enqueued:  # fmt: skip
        self._check_can_block(_task_of(fields), instead="`await task.aenqueue(...)`")
        done = self._add(queue, job_id, when, fields, waits, window)
        if done.added is Added.CREATED:
            self._run_blocking(queue, [job_id])
        return done

    async def aenqueue(
        self, queue: str, job_id: str, when: When, fields: Sequence[Any],
        window: Window = NO_WINDOW, waits: int = 0, durable: bool = False,
    ) -> Enqueued:  # fmt: skip
        done = self._add(queue, job_id, when, fields, waits, window)
        if done.added is Added.CREATED:
            await self._work(queue, [job_id])
        return done

    def enqueue_many(
        self, queue: str, when: When, jobs: Sequence[tuple[str, list[Any]]], durable: bool = False
    ) -> list[Enqueued]:
        if jobs:  # one task for the whole batch
            self._check_can_block(_task_of(jobs[0][1]), instead="`await task.aenqueue_many(...)`")
        done = [self._add(queue, job_id, when, fields) for job_id, fields in jobs]
        self._run_blocking(queue, [d.job_id for d in done if d.added is Added.CREATED])
        return done

    async def aenqueue_many(
        self, queue: str, when: When, jobs: Sequence[tuple[str, list[Any]]], durable: bool = False
    ) -> list[Enqueued]:
        done = [self._add(queue, job_id, when, fields) for job_id, fields in jobs]
        await self._work(queue, [d.job_id for d in done if d.added is Added.CREATED])
        return done

    def _add(
        self, queue: str, job_id: str, when: When, fields: Sequence[Any], waits: int = 0,
        window: Window = NO_WINDOW,
    ) -> Enqueued:  # fmt: skip
        """enqueue.lua: the job added, or the state of the job holding the id,
        or of the job a throttle window keeps. (A debounced job runs at once
        here, as a delayed one does: a repeat finds it started, and is added,
        as enqueue.lua adds it then.)"""
        with self._lock:
            jobs = self._jobs.setdefault(queue, {})
            existing = self._get(queue, job_id)
            if existing is not None:
                return Enqueued(Added.EXISTING, job_id, existing["state"].decode())
            how, window_ms, per = window
            if how == "throttle":
                kept, until = self._throttled.get((queue, per), ("", 0))
                if _now_ms() < until:
                    held = self._get(queue, kept)
                    return Enqueued(Added.KEPT, kept, held["state"].decode() if held else "")
                self._throttled[queue, per] = (job_id, _now_ms() + window_ms)
            state = b"waiting" if waits else b"queued"  # waiting: see wait_for
            job = {"state": state, "enqueued_at": _as_bytes(_now_ms())}
            job.update(zip(fields[::2], map(_as_bytes, fields[1::2]), strict=True))
            if when[1]:
                job["priority"] = _as_bytes(when[1])
            if when[2]:
                job["key"] = _as_bytes(when[2])
            jobs[job_id] = job
            return Enqueued(Added.CREATED, job_id)

    # -- jobs waiting for jobs: their parents ran inline, so they have ended ---

    def _release(self, child: str, parents: Sequence[str]) -> tuple[str, str] | None:
        """resolve.lua for all parents at once: queue the child (with the
        parents' results for a group's callback) or cancel it."""
        queue, child_id = split_ref(child)
        with self._lock:
            job = self._get(queue, child_id)
            if job is None:  # deleted meanwhile (another thread): resolve.lua ignores it too
                return None
            ends = [self._get(*split_ref(p)) for p in parents]
            failed = [p for p, e in zip(parents, ends, strict=True)
                      if e is not None and e["state"] in (b"failed", b"cancelled")]  # fmt: skip
            if failed:
                error = dump_error("DependencyFailed", f"job {failed[0]} did not complete")
                job.update(state=b"cancelled", finished_at=_as_bytes(_now_ms()), error=error)
                return None
            if any(e is not None and e["state"] != b"completed" for e in ends):
                return None  # a parent waits in a paused queue: this job waits too
            for parent, end in zip(parents, ends, strict=True):  # as resolve.lua keeps them
                if end is not None and "result" in end:
                    job[f"parent:{parent}"] = end["result"]
            job["state"] = b"queued"
            return queue, child_id

    def wait_for(self, child: str, parents: Sequence[str]) -> None:
        if (released := self._release(child, parents)) is not None:
            self._run_blocking(released[0], [released[1]])

    async def await_for(self, child: str, parents: Sequence[str]) -> None:
        if (released := self._release(child, parents)) is not None:
            await self._work(released[0], [released[1]])

    # -- running, as a worker would -------------------------------------------

    def _check_can_block(self, *names: str | bytes, instead: str) -> None:
        """A sync call cannot run an async task inside a running event loop: the
        task belongs on that loop, which only an ``await`` can hand it."""
        if asyncio._get_running_loop() is None:
            return
        for name in names:
            name = name.decode() if isinstance(name, bytes) else name
            task = self.app.tasks.get(name)
            if task is not None and task.is_async:
                raise RuntimeError(
                    f"{name} is an async task and an event loop is running here: in "
                    f"testing mode it runs at once, on this loop, so use {instead}"
                )

    def _run_blocking(self, queue: str, ids: list[str]) -> None:
        if ids:
            run_blocking(self._work(queue, ids))

    async def _work(self, queue: str, ids: list[str]) -> None:
        """Run each job to its end: lease, ``execute()``, record the outcome, and
        lease again at once after a retry."""
        if not self._included:  # as a worker does at start
            self._included = True
            self.app.import_includes()
        for job_id in ids:
            while (job := self._lease(queue, job_id)) is not None:
                cancel = self._running[queue, job_id]
                try:
                    outcome = await execute(self.app, queue, job, INLINE, cancel=cancel)
                except BaseException:  # the caller was interrupted: hand the job back
                    self._hand_back(queue, job)
                    raise
                finally:
                    self._running.pop((queue, job_id), None)
                self._finish(queue, job, outcome)

    def _lease(self, queue: str, job_id: str) -> Leased | None:
        """fetch.lua's lease of one queued job (none from a paused queue); the
        attempt gets the event its ``current_job().cancelled`` reads."""
        with self._lock:
            job = self._get(queue, job_id)
            if job is None or job["state"] != b"queued" or queue in self._paused:
                return None
            attempts = int(job.get("attempts", 0)) + 1
            drawn = token_base()  # as fetch.lua's: never the last attempt's
            token = _as_bytes(drawn + 1 if drawn == int(job.get("lease", 0)) else drawn)
            job.update(state=b"active", worker=WORKER_ID, started_at=_as_bytes(_now_ms()),
                       attempts=_as_bytes(attempts), lease=token)  # fmt: skip
            self._running[queue, job_id] = threading.Event()
            return Leased(job_id, job["task"].decode(), job["payload"], attempts, token,
                          job.get("options", b""), int(job.get("stalls", 0)),
                          _parent_results(job), job.get("trace"))  # fmt: skip

    def _holds(self, queue: str, leased: Leased) -> dict[str, bytes] | None:
        """The job, if this attempt still holds it (the lease token fences it)."""
        job = self._get(queue, leased.id)
        if job is None or job["state"] != b"active" or job["lease"] != leased.token:
            return None
        return job

    def _finish(self, queue: str, leased: Leased, outcome: Outcome) -> None:
        """finish_job.lua, but a retry is queued again at once (no back-off)."""
        with self._lock:
            job = self._holds(queue, leased)
            if job is None:  # cancelled while it ran: its outcome is discarded
                return
            now = _now_ms()
            if outcome.kind is OutcomeKind.COMPLETED:
                job.update(state=b"completed", finished_at=_as_bytes(now), result=outcome.value)
                if outcome.ms == 0:  # result_ttl=0: dropped at once
                    self._delete(queue, leased.id)
                elif outcome.ms > 0:  # else (FOREVER) kept forever
                    self._expires[queue, leased.id] = now + outcome.ms
            elif outcome.kind is OutcomeKind.RETRY:
                job.update(state=b"queued", error=outcome.value)
            else:
                job.update(state=b"failed", finished_at=_as_bytes(now), error=outcome.value)
                self._failed.setdefault(queue, {})[leased.id] = next(self._order)

    def _hand_back(self, queue: str, leased: Leased) -> None:
        """requeue.lua: an interrupted attempt does not count."""
        with self._lock:
            job = self._holds(queue, leased)
            if job is not None:
                job.update(state=b"queued", attempts=_as_bytes(leased.attempts - 1))

    # -- reading jobs and queues --------------------------------------------

    def _get(self, queue: str, job_id: str) -> dict[str, bytes] | None:
        """The job's hash, unless it has expired (then it is gone, as in Redis)."""
        expires = self._expires.get((queue, job_id))
        if expires is not None and expires <= _now_ms():
            self._delete(queue, job_id)
        return self._jobs.get(queue, {}).get(job_id)

    def _delete(self, queue: str, job_id: str) -> None:
        self._jobs.get(queue, {}).pop(job_id, None)
        self._failed.get(queue, {}).pop(job_id, None)
        self._expires.pop((queue, job_id), None)

    def _ids(self, queue: str) -> list[str]:
        """The queue's live job ids, in order of arrival."""
        return [i for i in list(self._jobs.get(queue, ())) if self._get(queue, i) is not None]

    def job(self, queue: str, job_id: str) -> StoredJob | None:
        with self._lock:
            job = self._get(queue, job_id)
            return stored_job(queue, job_id, job) if job is not None else None

    async def ajob(self, queue: str, job_id: str) -> StoredJob | None:
        return self.job(queue, job_id)

    def wait_end(self, queue: str, job_id: str, timeout: float | None) -> bytes:
        """The job's state (b'' if there is no such job), at once: nothing runs
        in the background to wait for. A job that has not ended by now is in a
        paused queue, or is the one running (a job waiting for itself)."""
        with self._lock:
            job = self._get(queue, job_id)
            return job["state"] if job is not None else b""

    async def await_end(self, queue: str, job_id: str, timeout: float | None) -> bytes:
        return self.wait_end(queue, job_id, timeout)

    def find_queues(self, job_id: str) -> list[str]:
        with self._lock:
            return [q for q in sorted(self._jobs) if self._get(q, job_id)]

    def queues(self) -> list[str]:
        return sorted(self._jobs)

    def counts(self, queue: str) -> dict[str, int]:
        with self._lock:
            states = Counter(self._jobs[queue][i]["state"] for i in self._ids(queue))
        names = ("queued", "waiting", "scheduled", "active", "completed", "failed")
        return {name: states[name.encode()] for name in names}

    def failed_ids(self, queue: str, limit: int = 100) -> list[str]:
        with self._lock:
            self._ids(queue)  # forget expired jobs first
            failed = self._failed.get(queue, {})
            return sorted(failed, key=failed.__getitem__, reverse=True)[:limit]

    def purge(self, queue: str) -> int:
        with self._lock:
            ids = self._ids(queue)
            for job_id in ids:
                self._delete(queue, job_id)
            return len(ids)

    def pause(self, queue: str) -> None:
        with self._lock:
            self._paused.add(queue)

    def is_paused(self, queue: str) -> bool:
        return queue in self._paused

    def resume(self, queue: str) -> bool:
        """Resume the queue and run the jobs that waited in it: those with no
        priority first, in order of arrival, then by priority."""
        with self._lock:
            if queue not in self._paused:
                return False
            jobs = self._jobs.get(queue, {})
            waiting = [i for i in self._ids(queue) if jobs[i]["state"] == b"queued"]
            waiting.sort(key=lambda i: int(jobs[i].get("priority", 0)) or -1)
            names = {jobs[i]["task"] for i in waiting}
            self._check_can_block(*names, instead="resume() outside the event loop")
            self._paused.discard(queue)
        self._run_blocking(queue, waiting)
        return True

    # -- changing one job from outside ---------------------------------------

    def retry(self, queue: str, job_id: str) -> None:
        self._requeue_failed(queue, job_id, blocking=True)
        self._run_blocking(queue, [job_id])

    async def aretry(self, queue: str, job_id: str) -> None:
        self._requeue_failed(queue, job_id, blocking=False)
        await self._work(queue, [job_id])

    def _requeue_failed(self, queue: str, job_id: str, *, blocking: bool) -> None:
        """retry.lua: a failed job is queued again (attempts reset);
        JobNotFound, or WrongState if it has not failed."""
        with self._lock:
            job = self._get(queue, job_id)
            if job is None:
                raise JobNotFound(f"no job {job_id} in queue {queue!r}")
            if job["state"] != b"failed":
                state = job["state"].decode()
                raise WrongState(
                    f"only a failed job can be retried; job {job_id} is {state}", state
                )
            if blocking:
                self._check_can_block(job["task"], instead="`await job.aretry()`")
            job.update(state=b"queued", attempts=b"0", stalls=b"0")
            job.pop("finished_at", None)
            self._failed[queue].pop(job_id, None)

    def cancel(self, queue: str, job_id: str, keep_ms: int) -> bool:
        """cancel.lua: True when cancelled, False when it had ended;
        JobNotFound if missing. A running attempt loses its lease: its outcome
        will be discarded."""
        with self._lock:
            job = self._get(queue, job_id)
            if job is None:
                raise JobNotFound(f"no job {job_id} in queue {queue!r}")
            if job["state"] not in RUNNABLE:
                return False
            now = _now_ms()
            job.update(state=b"cancelled", finished_at=_as_bytes(now),
                       lease=_as_bytes(int(job.get("lease", 0)) + 1))  # fmt: skip
            self._expires[queue, job_id] = now + keep_ms
            if (running := self._running.get((queue, job_id))) is not None:
                running.set()  # current_job().cancelled
            return True

    async def acancel(self, queue: str, job_id: str, keep_ms: int) -> bool:
        return self.cancel(queue, job_id, keep_ms)

    def run_now(self, queue: str, job_id: str) -> None:
        """run_now.lua: nothing is ever scheduled here (a delay is not waited
        for), so a job that exists is in another state."""
        with self._lock:
            job = self._get(queue, job_id)
            if job is None:
                raise JobNotFound(f"no job {job_id} in queue {queue!r}")
            state = job["state"].decode()
        raise WrongState(f"only a scheduled job can run now; job {job_id} is {state}", state)

    def delete(self, queue: str, ids: Sequence[str]) -> int:
        """delete.lua: the jobs are gone, whatever their state; how many
        existed. A running attempt is told it was cancelled, and its outcome
        is discarded (its job is no longer there to hold it)."""
        with self._lock:
            found = [job_id for job_id in ids if self._get(queue, job_id) is not None]
            for job_id in found:
                if (running := self._running.get((queue, job_id))) is not None:
                    running.set()
                self._delete(queue, job_id)
            return len(found)

    # -- progress, reported by a running job -----------------------------------

    def progress(self, queue: str, job_id: str, token: bytes, progress: bytes) -> bool:
        with self._lock:
            job = self._get(queue, job_id)
            if job is None or job["state"] != b"active" or job["lease"] != token:
                return False
            job["progress"] = progress
            return True

    async def aprogress(self, queue: str, job_id: str, token: bytes, progress: bytes) -> bool:
        return self.progress(queue, job_id, token, progress)


if TYPE_CHECKING:  # testing mode keeps the backend contract: a missing call is a type error
    _keeps: type[Backend] = InlineStore
