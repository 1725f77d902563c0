"""The REST management API (``/api/v1``): queues, jobs, workers, health and
tasks, and enqueueing a task by name with arguments checked against its JSON
Schema. Every answer is JSON; errors are ``{"detail": message}`` with a 4xx
status (404 for unknown queues, jobs and tasks), and 503 when Redis cannot
be reached. Each route declares in the OpenAPI document the error answers it
can give, with their bodies (errors.py), and only those.
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
from ..schema import check_arguments, task_schema
from ..store import LISTED_STATES
from ..task import Task
from .errors import (
    CHANGE,
    ERRORS,
    READ,
    AmbiguousJobBody,
    ArgumentsErrorBody,
    ErrorBody,
    ParametersErrorBody,
    errors,
)

router = APIRouter(prefix="/api/v1")

STATE_PATTERN = "^(" + "|".join(LISTED_STATES) + ")$"


def _app(request: Request) -> App:
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
    app = _app(request)
    return [manage.queue_info(app, q) for q in app.queues()]


def _queue(request: Request, name: str) -> Queue:
    app = _app(request)
    return app.queue(manage.check_queue(app, name))


@router.get(
    "/queues/{queue}",
    tags=["queues"],
    summary="One queue",
    responses=errors(*READ, 404),
)
def get_queue(request: Request, queue: str) -> dict[str, Any]:
    app = _app(request)
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
    app = _app(request)
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
    return manage.history(_app(request), minutes=minutes)


@router.get(
    "/queues/{queue}/history",
    tags=["queues"],
    summary="Jobs per minute in one queue",
    responses=errors(*READ, 404, 422),
)
def queue_history(request: Request, queue: str, minutes: MinutesParam = 60) -> list[dict[str, Any]]:
    return manage.history(_app(request), queue, minutes)


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
    app = _app(request)
    return {"queue": queue, "retried": manage.retry_failed(app, manage.check_queue(app, queue))}


@router.delete(
    "/queues/{queue}/failed",
    tags=["queues"],
    summary="Delete every failed job",
    responses=errors(*CHANGE, 404),
)
def delete_failed(request: Request, queue: str) -> dict[str, Any]:
    app = _app(request)
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
    app = _app(request)
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
    return manage.job_detail(_app(request), job_id, queue)


@router.post(
    "/jobs/{job_id:path}/cancel",
    tags=["jobs"],
    summary="Cancel a job that has not ended",
    responses=errors(*CHANGE, 404) | ENDED,
)
def cancel_job(request: Request, job_id: str, queue: QueueParam = None) -> dict[str, Any]:
    job = manage.job(_app(request), job_id, queue)
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
    job = manage.job(_app(request), job_id, queue)
    job.retry()
    return {"id": job_id, "queue": job.queue, "state": "queued"}


@router.post(
    "/jobs/{job_id:path}/run-now",
    tags=["jobs"],
    summary="Run a scheduled job now, not at its time",
    responses=errors(*CHANGE, 404) | NOT_SCHEDULED,
)
def run_job_now(request: Request, job_id: str, queue: QueueParam = None) -> dict[str, Any]:
    job = manage.job(_app(request), job_id, queue)
    job.run_now()
    return {"id": job_id, "queue": job.queue, "state": "queued"}


@router.delete(
    "/jobs/{job_id:path}",
    tags=["jobs"],
    summary="Delete a job in any state",
    responses=errors(*CHANGE, 404) | AMBIGUOUS,
)
def delete_job(request: Request, job_id: str, queue: QueueParam = None) -> dict[str, Any]:
    job = manage.job(_app(request), job_id, queue)
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
    return manage.workers(_app(request))


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
    ok, report = manage.health(_app(request), max_ready_age)
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
        for _, task in sorted(_app(request).tasks.items())
        if task.options.cron
    ]


# -- tasks --------------------------------------------------------------------------


def _task_json(task: Task[..., Any]) -> dict[str, Any]:
    schema = task_schema(task)
    return {
        "name": task.name,
        "queue": task.options.queue,
        "doc": (task.__doc__ or "").strip(),
        "cron": task.options.cron,
        "enqueue_over_http": schema is not None,
        "schema": schema,
    }


def _task(request: Request, name: str) -> Task[..., Any]:
    task = _app(request).tasks.get(name)
    if task is None or task.fn is None:
        raise manage.NotFound(f"no task {name!r} in this app")
    return task


@router.get(
    "/tasks",
    tags=["tasks"],
    summary="The app's tasks with their argument schemas",
    responses=errors(400, 401),
)
def list_tasks(request: Request) -> list[dict[str, Any]]:
    return [_task_json(t) for _, t in sorted(_app(request).tasks.items()) if t.fn is not None]


@router.get(
    "/tasks/{name}",
    tags=["tasks"],
    summary="One task with its argument schema",
    responses=errors(400, 401, 404),
)
def get_task(request: Request, name: str) -> dict[str, Any]:
    return _task_json(_task(request, name))


ENQUEUE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ErrorBody,
        "description": ERRORS[400]["description"] + ", arguments too large, or options that "
        "do not go together",
    },
    409: {
        "model": ErrorBody,
        "description": "Enqueued, but Redis could not confirm it durable (NotDurable), or "
        "durable enqueues need a newer Redis (DurableUnsupported)",
    },
    422: {
        "model": ParametersErrorBody | ArgumentsErrorBody,
        "description": "A body that is not JSON or not of this shape (a list of issues), or "
        "arguments that do not fit the task's schema (``errors`` says where)",
    },
}


class EnqueueOptions(BaseModel):
    model_config = {"extra": "forbid"}

    job_id: str | None = Field(None, min_length=1, max_length=200, description="de-duplicates")
    delay: float | None = Field(None, ge=0, description="seconds")
    priority: int | None = Field(None, ge=1, description="smaller runs sooner")
    key: str | None = Field(None, min_length=1, max_length=200, description="its lane")


class EnqueueRequest(BaseModel):
    model_config = {"extra": "forbid"}

    args: dict[str, Any] = Field(default_factory=dict, description="named arguments (schema)")
    options: EnqueueOptions = Field(default_factory=EnqueueOptions)


@router.post(
    "/tasks/{name}/jobs",
    tags=["tasks"],
    status_code=201,
    summary="Enqueue a job",
    responses=errors(*CHANGE, 404) | ENQUEUE_ERRORS,
)
def enqueue(request: Request, name: str, body: Annotated[EnqueueRequest, Body()]) -> dict[str, Any]:
    """Enqueue one job of the task; ``args`` must match the task's schema
    (``GET /tasks/{name}``). With ``options.job_id`` a retried request is
    idempotent: the job is made once (``created`` says whether this call did)."""
    task = _task(request, name)
    arguments = check_arguments(task, body.args)
    options = body.options.model_dump(exclude_none=True)
    job = (task.with_options(**options) if options else task).enqueue(**arguments)
    return {"id": job.id, "queue": job.queue, "task": name, "created": job.created}
