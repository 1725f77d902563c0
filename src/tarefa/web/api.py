"""The REST management API (``/api/v1``): queues, jobs, workers, health and
cron (the tasks, and enqueueing one over HTTP: api_tasks.py). Every answer
is JSON; errors are ``{"detail": message}`` with a 4xx status (404 for
unknown queues, jobs and tasks), and 503 when Redis cannot be reached. Each
route declares in the OpenAPI document the error answers it can give, with
their bodies (errors.py), and only those.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator

from .. import manage
from ..app import App, Queue
from ..durations import parse_duration
from ..errors import TarefaError
from ..store import LISTED_STATES
from .errors import (
    CHANGE,
    READ,
    AmbiguousJobBody,
    ErrorBody,
    ParametersErrorBody,
    errors,
)

router = APIRouter(prefix="/api/v1")

STATE_PATTERN = "^(" + "|".join(LISTED_STATES) + ")$"


def app_of(request: Request) -> App:
    app: App = request.app.state.tarefa
    return app


# -- queues -------------------------------------------------------------------------


@router.get(
    "/queues",
    tags=["queues"],
    summary="Every queue with its counts",
    responses=errors(*READ),
)
def list_queues(request: Request) -> list[dict[str, Any]]:
    app = app_of(request)
    return [manage.queue_info(app, q) for q in app.queues()]


def _queue(request: Request, name: str) -> Queue:
    app = app_of(request)
    return app.queue(manage.check_queue(app, name))


@router.get(
    "/queues/{queue}",
    tags=["queues"],
    summary="One queue",
    responses=errors(*READ, 404),
)
def get_queue(request: Request, queue: str) -> dict[str, Any]:
    app = app_of(request)
    return manage.queue_info(app, manage.check_queue(app, queue))


@router.get(
    "/queues/{queue}/jobs",
    tags=["queues"],
    summary="A page of a queue's jobs",
    responses=errors(*READ, 404, 422),
)
def queue_jobs(
    request: Request,
    queue: str,
    state: Annotated[str, Query(pattern=STATE_PATTERN)] = "queued",
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=manage.MAX_PAGE)] = 50,
    search: Annotated[
        str, Query(max_length=200, description="in the id, task name or arguments")
    ] = "",
) -> dict[str, Any]:
    app = app_of(request)
    manage.check_queue(app, queue)
    return manage.list_jobs(app, queue, state, offset=offset, limit=limit, search=search)


MinutesParam = Annotated[int, Query(ge=1, le=manage.HISTORY_MINUTES, description="how far back")]


@router.get(
    "/history",
    tags=["queues"],
    summary="Jobs per minute in every queue",
    responses=errors(*READ, 422),
)
def history(request: Request, minutes: MinutesParam = 60) -> list[dict[str, Any]]:
    return manage.history(app_of(request), minutes=minutes)


@router.get(
    "/queues/{queue}/history",
    tags=["queues"],
    summary="Jobs per minute in one queue",
    responses=errors(*READ, 404, 422),
)
def queue_history(request: Request, queue: str, minutes: MinutesParam = 60) -> list[dict[str, Any]]:
    return manage.history(app_of(request), queue, minutes)


@router.post(
    "/queues/{queue}/pause",
    tags=["queues"],
    summary="Workers stop taking its jobs",
    responses=errors(*CHANGE, 404),
)
def pause_queue(request: Request, queue: str) -> dict[str, Any]:
    _queue(request, queue).pause()
    return {"queue": queue, "paused": True}


@router.post(
    "/queues/{queue}/resume",
    tags=["queues"],
    summary="Workers take its jobs again",
    responses=errors(*CHANGE, 404),
)
def resume_queue(request: Request, queue: str) -> dict[str, Any]:
    was_paused = _queue(request, queue).resume()
    return {"queue": queue, "paused": False, "was_paused": was_paused}


@router.post(
    "/queues/{queue}/purge",
    tags=["queues"],
    summary="Delete every job of the queue",
    responses=errors(*CHANGE, 404),
)
def purge_queue(request: Request, queue: str) -> dict[str, Any]:
    return {"queue": queue, "deleted_keys": _queue(request, queue).purge()}


@router.post(
    "/queues/{queue}/retry-failed",
    tags=["queues"],
    summary="Run every failed job again",
    responses=errors(*CHANGE, 404),
)
def retry_failed(request: Request, queue: str) -> dict[str, Any]:
    app = app_of(request)
    return {"queue": queue, "retried": manage.retry_failed(app, manage.check_queue(app, queue))}


@router.delete(
    "/queues/{queue}/failed",
    tags=["queues"],
    summary="Delete every failed job",
    responses=errors(*CHANGE, 404),
)
def delete_failed(request: Request, queue: str) -> dict[str, Any]:
    app = app_of(request)
    return {"queue": queue, "deleted": manage.delete_failed(app, manage.check_queue(app, queue))}


class CleanRequest(BaseModel):
    model_config = {"extra": "forbid"}

    state: Literal["completed", "failed", "cancelled"]
    older_than: float | str = Field(
        description="how long ago the jobs ended: seconds, or '30s', '15m', '2h', '7d' "
        "(0: every one)",
        examples=[604800, "7d"],
    )

    @field_validator("older_than", mode="before")
    @classmethod
    def _seconds(cls, value: object) -> float:
        return parse_duration(value, "older_than")


CLEAN_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {
        "model": ParametersErrorBody,
        "description": "A body that is not of this shape: an unknown state, an older_than that "
        "is not seconds or a duration (a list of issues)",
    },
}


@router.post(
    "/queues/{queue}/clean",
    tags=["queues"],
    summary="Delete the jobs in one ended state that ended long enough ago",
    responses=errors(*CHANGE, 404) | CLEAN_ERRORS,
)
def clean_queue(
    request: Request, queue: str, body: Annotated[CleanRequest, Body()]
) -> dict[str, Any]:
    """Delete the queue's completed, failed or cancelled jobs that ended at
    least ``older_than`` ago, with their index entries; ``deleted`` says how
    many. A job in another state is never deleted."""
    app = app_of(request)
    deleted = manage.clean(app, queue, body.state, body.older_than)
    return {"queue": queue, "state": body.state, "deleted": deleted}


# -- jobs ---------------------------------------------------------------------------

# Job ids are unique per queue: an id given without ?queue= that is in
# several queues is refused (409) with their names, never one picked.
_AMBIGUOUS = "the id is in more than one queue and no ?queue= says which (``queues``)"


def _conflict(description: str = "") -> dict[int | str, dict[str, Any]]:
    said = f"{description}, or {_AMBIGUOUS}" if description else _AMBIGUOUS.capitalize()
    return {409: {"model": AmbiguousJobBody | ErrorBody, "description": said}}


AMBIGUOUS = _conflict()
ENDED = _conflict("The job has ended: nothing to cancel")
NOT_FAILED = _conflict("Only a failed job can be retried")
NOT_SCHEDULED = _conflict("Only a scheduled job can run now")

QueueParam = Annotated[
    str | None,
    Query(description="its queue (default: search every queue; needed when the id is in several)"),
]

# A job id is any string, "/" included ("a/b", sent as a%2Fb, arrives decoded
# as a/b): its routes take the rest of the path. They stay unambiguous, as
# the only routes after an id end it with /cancel, /retry or /run-now and
# take POST, which nothing else under /jobs/ does.


@router.get(
    "/jobs/{job_id:path}",
    tags=["jobs"],
    summary="One job, in full",
    responses=errors(*READ, 404) | AMBIGUOUS,
)
def get_job(request: Request, job_id: str, queue: QueueParam = None) -> dict[str, Any]:
    return manage.job_detail(app_of(request), job_id, queue)


@router.post(
    "/jobs/{job_id:path}/cancel",
    tags=["jobs"],
    summary="Cancel a job that has not ended",
    responses=errors(*CHANGE, 404) | ENDED,
)
def cancel_job(request: Request, job_id: str, queue: QueueParam = None) -> dict[str, Any]:
    job = manage.job(app_of(request), job_id, queue)
    if not job.cancel():
        raise TarefaError(f"job {job_id} has ended already ({job.status}); nothing to cancel")
    return {"id": job_id, "queue": job.queue, "state": "cancelled"}


@router.post(
    "/jobs/{job_id:path}/retry",
    tags=["jobs"],
    summary="Run a failed job again",
    responses=errors(*CHANGE, 404) | NOT_FAILED,
)
def retry_job(request: Request, job_id: str, queue: QueueParam = None) -> dict[str, Any]:
    job = manage.job(app_of(request), job_id, queue)
    job.retry()
    return {"id": job_id, "queue": job.queue, "state": "queued"}


@router.post(
    "/jobs/{job_id:path}/run-now",
    tags=["jobs"],
    summary="Run a scheduled job now, not at its time",
    responses=errors(*CHANGE, 404) | NOT_SCHEDULED,
)
def run_job_now(request: Request, job_id: str, queue: QueueParam = None) -> dict[str, Any]:
    job = manage.job(app_of(request), job_id, queue)
    job.run_now()
    return {"id": job_id, "queue": job.queue, "state": "queued"}


@router.delete(
    "/jobs/{job_id:path}",
    tags=["jobs"],
    summary="Delete a job in any state",
    responses=errors(*CHANGE, 404) | AMBIGUOUS,
)
def delete_job(request: Request, job_id: str, queue: QueueParam = None) -> dict[str, Any]:
    job = manage.job(app_of(request), job_id, queue)
    job.delete()
    return {"id": job_id, "queue": job.queue, "deleted": True}


# -- workers and health -----------------------------------------------------------


@router.get(
    "/workers",
    tags=["workers"],
    summary="Live workers",
    responses=errors(*READ),
)
def list_workers(request: Request) -> list[dict[str, Any]]:
    return manage.workers(app_of(request))


class HealthReport(BaseModel):
    ok: bool
    redis: str = Field(description='"ok", or "unreachable" (then ``error`` says why)')
    workers: int | None = None
    oldest_ready_age: dict[str, float | None] | None = None
    late_queues: list[str] | None = None
    unserved_queues: list[str] | None = Field(
        None, description="queues with a ready job and no live worker serving them (not paused)"
    )
    error: str | None = None


# The health check needs no credentials (a load balancer asks), and says
# "unhealthy" with a report, whatever the reason.
HEALTH: dict[int | str, dict[str, Any]] = {
    200: {"model": HealthReport, "description": "Healthy"},
    503: {
        "model": HealthReport,
        "description": "Redis unreachable, a queue late, or one with ready jobs and no worker",
    },
}


@router.get(
    "/health",
    tags=["health"],
    summary="200 when healthy, else 503",
    responses=errors(400, 422) | HEALTH,
)
def health(
    request: Request,
    max_ready_age: Annotated[
        float | None, Query(gt=0, description="seconds a ready job may wait before unhealthy")
    ] = None,
) -> JSONResponse:
    ok, report = manage.health(app_of(request), max_ready_age)
    return JSONResponse({"ok": ok, **report}, status_code=200 if ok else 503)


@router.get(
    "/cron",
    tags=["tasks"],
    summary="Cron schedules with their next run",
    responses=errors(400, 401),
)
def list_cron(request: Request) -> list[dict[str, Any]]:
    from ..worker.scheduler import next_tick

    now = datetime.now(UTC)
    return [
        {
            "task": task.name,
            "schedule": task.options.cron,
            "tz": task.options.tz,
            "queue": task.options.queue,
            "next_run": datetime.fromtimestamp(next_tick(task, now), UTC).isoformat(),
        }
        for _, task in sorted(app_of(request).tasks.items())
        if task.options.cron
    ]
