"""What an operator sees and does, as JSON-ready values: the one layer under
the REST API, the dashboard and the CLI's ``--json``, so the three agree.

Reads may be a moment stale; actions go through the same scripts as the
Python API (job.cancel(), job.retry(), queue.purge(), ...).
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from .durations import parse_duration
from .errors import AmbiguousJob, JobNotFound, WrongState
from .job import Job
from .records import JobInfo, StoredJob
from .stats import EVENTS, LOST, split_field
from .store import CLEANABLE_STATES, LISTED_STATES

if TYPE_CHECKING:
    from .app import App

MAX_PAGE = 500  # jobs per listing page
SEARCH_SCAN = 10_000  # ids a search looks through, per state
BATCH = 500  # ids per call when acting on a whole set (retry or delete all failed)
HISTORY_MINUTES = 1440  # how far back the charts go: the history Redis keeps
MINUTE_MS = 60_000


class NotFound(LookupError):
    """An unknown queue, job or task (the REST API answers 404)."""


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def job_json(info: JobInfo) -> dict[str, Any]:
    return {k: _json_value(v) for k, v in dataclasses.asdict(info).items()}


def check_queue(app: App, name: str) -> str:
    if name not in app.queues():
        raise NotFound(f"no queue {name!r}")
    return name


def queue_info(app: App, name: str) -> dict[str, Any]:
    """A queue's counts per state, whether it is paused, and how long its
    longest-waiting ready job has waited. The ``*_count`` and ``length``
    names are those RQ-based tools use."""
    store = app.store
    counts = store.counts(name)
    return {
        "name": name,
        "paused": store.is_paused(name),
        "counts": counts,
        "totals": totals(app, name),
        "oldest_ready_age": store.oldest_ready_age(name),
        "length": counts["queued"],
        "started_count": counts["active"],
        "finished_count": counts["completed"],
        "failed_count": counts["failed"],
        "deferred_count": counts["waiting"],
        "scheduled_count": counts["scheduled"],
    }


def totals(app: App, queue: str) -> dict[str, int]:
    """How many jobs the queue's workers ever started, completed, failed and
    retried, how many were enqueued, and how many were found lost: gone from
    Redis before they ended (tarefa.stats)."""
    sums = dict.fromkeys((*EVENTS, LOST), 0)
    for raw, n in app.store.stats(queue).items():
        event, _ = split_field(raw)
        if event in sums:
            sums[event] += n
    return sums


def history(app: App, queue: str | None = None, minutes: int = 60) -> list[dict[str, Any]]:
    """Jobs enqueued, started, completed, failed and retried in each of the
    last ``minutes`` whole minutes (oldest first), in one queue or all. Where
    no copy of the totals was taken for some minutes (no worker running), what
    happened meanwhile is spread evenly over them."""
    if not isinstance(minutes, int) or not 1 <= minutes <= HISTORY_MINUTES:
        raise ValueError(f"minutes must be 1-{HISTORY_MINUTES}")
    queues = [check_queue(app, queue)] if queue else app.queues()
    now = app.store.clock_ms() // MINUTE_MS
    first = now - minutes
    per_minute = {m: [0.0] * len(EVENTS) for m in range(first, now)}
    for name in queues:
        for (t0, *before), (t1, *after) in itertools.pairwise(app.store.history(name, minutes)):
            m0, m1 = t0 // MINUTE_MS, t1 // MINUTE_MS
            span = max(m1 - m0, 1)  # (Redis's clock may have gone back: a failover)
            for i, (a, b) in enumerate(zip(before, after, strict=True)):
                change = (b - a if b >= a else b) / span  # b < a: the totals were reset
                for m in range(max(m0, first), min(m1, now)):
                    per_minute[m][i] += change
    return [
        {"time": datetime.fromtimestamp(m * 60, UTC).isoformat()}
        | {event: round(n, 1) for event, n in zip(EVENTS, counts, strict=True)}
        for m, counts in per_minute.items()
    ]


def list_jobs(
    app: App, queue: str, state: str, *, offset: int = 0, limit: int = 50, search: str = ""
) -> dict[str, Any]:
    """One page of a queue's jobs in one state (see store.browse for the
    order). ``search`` keeps the jobs whose id, task name or arguments (as
    JSON) contain it, looking through the first SEARCH_SCAN jobs of that
    state. Cancelled jobs are in no index: they are found by a bounded scan
    of the queue's jobs, and ``complete`` says whether it saw them all."""
    if state not in LISTED_STATES:
        raise ValueError(f"state must be one of {', '.join(LISTED_STATES)}, not {state!r}")
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise ValueError(f"limit must be 1-{MAX_PAGE} and offset >= 0")
    store = app.store
    listing: dict[str, Any] = {"queue": queue, "state": state}
    if state == "cancelled":
        ids, listing["complete"] = store.cancelled_ids(queue)
        ids = ids[:SEARCH_SCAN] if search else ids
    else:
        ids = store.job_ids(queue, state, 0, SEARCH_SCAN) if search else []
    if search:
        found = _search(app, queue, ids, search)
        total, page = len(found), found[offset : offset + limit]
    else:
        if state == "cancelled":
            total, ids = len(ids), ids[offset : offset + limit]
        else:
            total, ids = store.counts(queue)[state], store.job_ids(queue, state, offset, limit)
        page = [info for info in store.job_infos(queue, ids) if info is not None]
    jobs = [job_json(info) for info in page]
    if state == "scheduled":
        _add_run_at(app, queue, jobs)
    return listing | {"total": total, "offset": offset, "jobs": jobs}


def _search(app: App, queue: str, ids: list[str], search: str) -> list[JobInfo]:
    """The jobs of ``ids`` whose id, task name or arguments contain ``search``.
    Arguments are matched in their stored JSON (a pickled payload is not
    loaded: that would run code), read BATCH jobs at a time."""
    found = []
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        infos = app.store.job_infos(queue, chunk)
        payloads = app.store.job_payloads(queue, chunk)
        for info, payload in zip(infos, payloads, strict=True):
            if info is None:
                continue
            if search in info.id or search in info.task:
                found.append(info)
            elif payload and payload[:1] != b"\x80" and search in payload.decode(errors="replace"):
                found.append(info)
    return found


def _add_run_at(app: App, queue: str, jobs: list[dict[str, Any]]) -> None:
    """Each scheduled job's due time, as ``run_at`` (ISO, UTC; None if not scheduled)."""
    for job, ms in zip(jobs, app.store.run_times(queue, [j["id"] for j in jobs]), strict=True):
        job["run_at"] = None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def find_job(app: App, job_id: str, queue: str | None = None) -> StoredJob:
    """Everything stored about a job; NotFound if there is none, and
    AmbiguousJob when ``queue`` is not given and the id is in several."""
    if not queue:
        found = app.store.find_queues(job_id)
        if len(found) > 1:
            raise AmbiguousJob(job_id, found)
        queue = found[0] if found else None
    stored = app.store.job(queue, job_id) if queue else None
    if stored is None:
        raise NotFound(f"no job {job_id!r}" + (f" in queue {queue!r}" if queue else ""))
    return stored


def job(app: App, job_id: str, queue: str | None = None) -> Job[Any]:
    """A handle on an existing job (its queue searched if not given)."""
    return Job(app, find_job(app, job_id, queue).info.queue, job_id)


def job_detail(app: App, job_id: str, queue: str | None = None) -> dict[str, Any]:
    """Everything about one job: its summary, arguments, options, parents and
    result. Pickled values are not shown: loading them would run code. A
    completed job keeps no arguments, options or parents (finish_job.lua):
    ``args`` and ``kwargs`` are then None. (One completed by an earlier
    release kept them, and shows them.)"""
    stored = find_job(app, job_id, queue)
    queue = stored.info.queue
    detail = job_json(stored.info)
    call = _decoded(stored.payload, default=([], {}))
    if stored.payload is None:
        detail["args"] = detail["kwargs"] = None
    elif isinstance(call, list) and len(call) == 2 and isinstance(call[1], dict):
        detail["args"], detail["kwargs"] = call
    else:  # pickled, undecodable, or not [args, kwargs]: shown as it is
        detail["args"], detail["kwargs"] = call, {}
    detail["options"] = _decoded(stored.options, default={})
    detail["parents"] = _decoded(stored.parents, default={}).get("parents", [])
    detail["result"] = _decoded(stored.result, default=None)
    for name, ms in (
        ("ready_at_ms", stored.ready_at_ms),
        ("enqueued_at_ms", stored.enqueued_at_ms),
    ):
        if ms is not None:
            detail[name] = ms
    if detail["state"] == "scheduled":
        _add_run_at(app, queue, [detail])
    return detail


def _decoded(data: bytes | None, default: Any) -> Any:
    if not data:
        return default
    if data[:1] == b"\x80":
        return {"pickled": f"{len(data)} bytes, not shown"}
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return {"undecodable": data[:200].decode(errors="replace")}


def retry_failed(app: App, queue: str) -> int:
    """Send every job of the dead-letter set back to run; returns how many."""
    retried = 0
    while ids := app.store.failed_ids(queue, BATCH):
        for job_id in ids:
            try:
                app.store.retry(queue, job_id)
            except (JobNotFound, WrongState):  # gone or retried since it was listed
                continue
            retried += 1
    return retried


def delete_failed(app: App, queue: str) -> int:
    """Delete every job of the dead-letter set; returns how many."""
    deleted = 0
    while ids := app.store.failed_ids(queue, BATCH):
        deleted += app.store.delete(queue, ids)
    return deleted


def clean(app: App, queue: str, state: str, older_than: object) -> int:
    """Delete the queue's jobs in ``state`` (completed, failed or cancelled)
    that ended at least ``older_than`` ago (seconds, or "30s", "15m", "2h",
    "7d"), with their index entries; returns how many. One bounded script
    call per batch, until none is left, so Redis serves others between them."""
    if state not in CLEANABLE_STATES:
        raise ValueError(f"state must be one of {', '.join(CLEANABLE_STATES)}, not {state!r}")
    older_than_ms = int(parse_duration(older_than, "older_than") * 1000)
    check_queue(app, queue)
    deleted, cursor = 0, "0"
    while cursor:
        n, cursor = app.store.clean_batch(queue, state, older_than_ms, cursor)
        deleted += n
    return deleted


def workers(app: App) -> list[dict[str, Any]]:
    """Live workers: id, host, pid, queues, concurrency, running jobs, and
    when they started and last beat (their own clocks)."""
    now = time.time()
    out = []
    for w in app.store.workers():
        started = int(w.get("started_at", 0)) / 1000
        beat = int(w.get("beat_at", w.get("started_at", 0))) / 1000
        out.append({
            "id": w["id"],
            "host": w.get("host", ""),
            "pid": int(w.get("pid", 0)),
            "queues": [q for q in w.get("queues", "").split(",") if q],
            "concurrency": int(w.get("concurrency", 0)),
            "running": int(w.get("running", 0)),
            "started_at": datetime.fromtimestamp(started).astimezone().isoformat(),
            "uptime": round(now - started, 1),
            "last_beat_ago": round(max(0.0, now - beat), 1),
        })  # fmt: skip
    return out


def redis_memory(app: App) -> dict[str, Any]:
    """Redis's maxmemory-policy, its limit and use in bytes (None where Redis
    would not say; a limit of 0: none), and ``warnings``: why the policy may
    lose jobs, when it is not noeviction (store/memory.py)."""
    memory = app.store.memory()
    return {
        "policy": memory.policy,
        "maxmemory": memory.maxmemory,
        "used": memory.used,
        "warnings": [memory.warning] if memory.warning else [],
        "unknown": memory.unknown,
    }


def unserved_queues(app: App, ready_ages: dict[str, float | None] | None = None) -> list[str]:
    """The queues with a job ready to run and no live worker serving them:
    nothing will run those jobs. A paused queue is left out (pausing is a
    choice: its jobs wait by design), as is one whose jobs are only
    scheduled or waiting (nothing to run yet). ``ready_ages``: each queue's
    oldest_ready_age, when the caller has read them already."""
    ages = ready_ages
    if ages is None:
        ages = {q: app.store.oldest_ready_age(q) for q in app.queues()}
    served = {q for w in app.store.workers() for q in w.get("queues", "").split(",") if q}
    return [
        q for q, age in ages.items()
        if age is not None and q not in served and not app.store.is_paused(q)
    ]  # fmt: skip


def health(app: App, max_ready_age: float | None = None) -> tuple[bool, dict[str, Any]]:
    """Whether Redis answers, how many workers are alive, each queue's oldest
    ready job age, the queues with ready jobs that no live worker serves
    (``unserved_queues``), and ``warnings`` about Redis's settings (a
    maxmemory-policy that evicts keys). Healthy: Redis answers, every queue
    with a ready job has a worker, and, with ``max_ready_age``, no queue's
    oldest ready job has waited longer. A warning does not make it
    unhealthy: a setting is for a person to change, and restarting whatever
    watches this answer would not change it."""
    try:
        app.store.reachable()
        queues = {q: app.store.oldest_ready_age(q) for q in app.queues()}
        live = len(app.store.workers())
        unserved = unserved_queues(app, queues)
        memory = redis_memory(app)
    except Exception as exc:  # any failure to read is "unhealthy", with the reason
        return False, {"redis": "unreachable", "error": f"{type(exc).__name__}: {exc}"}
    late = [q for q, age in queues.items() if max_ready_age and age and age > max_ready_age]
    report = {
        "redis": "ok",
        "workers": live,
        "oldest_ready_age": queues,
        "late_queues": late,
        "unserved_queues": unserved,
        "maxmemory_policy": memory["policy"],
        "warnings": memory["warnings"],
    }
    return not late and not unserved, report
