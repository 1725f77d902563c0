"""A job's hash (``tarefa:{q}:job:<id>``, see docs/architecture.md) read into
the records the rest of tarefa sees (records.py)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import orjson

from ..records import JobInfo, JobState, StoredJob
from ..serializer import load_error

# The fields of a job's summary (everything but its stored values).
SUMMARY_FIELDS = ("task", "state", "attempts", "stalls", "enqueued_at", "ready_at",
                  "started_at", "finished_at", "worker", "error", "progress", "key",
                  "priority")  # fmt: skip


def _datetime(ms: bytes | None) -> datetime | None:
    return datetime.fromtimestamp(int(ms) / 1000, UTC) if ms else None


def _text(raw: Mapping[str, bytes], name: str) -> str | None:
    return raw[name].decode() if name in raw else None


def job_info(queue: str, job_id: str, raw: Mapping[str, bytes]) -> JobInfo:
    """The summary of a job from its hash's fields (``raw``: name -> value,
    absent fields left out)."""
    return JobInfo(
        id=job_id,
        queue=queue,
        task=raw.get("task", b"").decode(),
        state=JobState(raw["state"].decode()),
        attempts=int(raw.get("attempts", 0)),
        stalls=int(raw.get("stalls", 0)),
        enqueued_at=_datetime(raw.get("enqueued_at")),
        started_at=_datetime(raw.get("started_at")),
        finished_at=_datetime(raw.get("finished_at")),
        worker=_text(raw, "worker"),
        error=load_error(raw["error"]) if "error" in raw else None,
        progress=orjson.loads(raw["progress"]) if "progress" in raw else None,
        key=_text(raw, "key"),
        priority=int(raw["priority"]) if "priority" in raw else None,
    )


def stored_job(queue: str, job_id: str, raw: Mapping[str, bytes]) -> StoredJob:
    """Everything about a job from its whole hash."""
    return StoredJob(
        info=job_info(queue, job_id, raw),
        payload=raw.get("payload"),
        result=raw.get("result"),
        options=raw.get("options"),
        parents=raw.get("parents"),
        enqueued_at_ms=int(raw["enqueued_at"]) if "enqueued_at" in raw else None,
        ready_at_ms=int(raw["ready_at"]) if "ready_at" in raw else None,
    )
