"""The REST management API (``/api/v1``): queues, jobs, workers, health and
tasks, and enqueueing a task by name with arguments checked against its JSON
Schema. Every answer is JSON; errors are ``{"detail": message}`` with a 4xx
status (404 for unknown queues, jobs and tasks), and 503 when Redis cannot
be reached.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from redis.exceptions import RedisError

from .. import manage
from ..app import App, Queue
from ..errors import TarefaError
from ..schema import ArgumentsError, check_arguments, task_schema
from ..store.browse import LISTED_STATES
from ..store.connection import describe_error

router = APIRouter(prefix="/api/v1")

STATE_PATTERN = "^(" + "|".join(LISTED_STATES) + ")$"


def _app(request: Request) -> App:
    return request.app.state.tarefa


def install_error_handlers(api: FastAPI) -> None:
    """Map tarefa's errors to HTTP answers, each with a clear message."""

    def handler(status: int):
        async def handle(request: Request, exc: Exception) -> JSONResponse:
            body: dict[str, Any] = {"detail": str(exc)}
            if isinstance(exc, ArgumentsError) and exc.errors:
                body["errors"] = exc.errors
            return JSONResponse(body, status_code=status)

        return handle

    async def redis_down(request: Request, exc: Exception) -> JSONResponse:
        detail = describe_error(_app(request).store.url, exc)
        return JSONResponse({"detail": detail}, status_code=503)

    api.add_exception_handler(manage.NotFound, handler(404))
    api.add_exception_handler(ArgumentsError, handler(422))
    api.add_exception_handler(ValueError, handler(400))
    api.add_exception_handler(TypeError, handler(400))
    api.add_exception_handler(TarefaError, handler(409))
    api.add_exception_handler(RedisError, redis_down)


# -- queues -------------------------------------------------------------------------


@router.get("/queues", tags=["queues"], summary="Every queue with its counts")
def list_queues(request: Request) -> list[dict[str, Any]]:
    app = _app(request)
    return [manage.queue_info(app, q) for q in app.queues()]


def _queue(request: Request, name: str) -> Queue:
    app = _app(request)
    return app.queue(manage.check_queue(app, name))


@router.get("/queues/{queue}", tags=["queues"], summary="One queue")
def get_queue(request: Request, queue: str) -> dict[str, Any]:
    app = _app(request)
    return manage.queue_info(app, manage.check_queue(app, queue))


@router.get("/queues/{queue}/jobs", tags=["queues"], summary="A page of a queue's jobs")
def queue_jobs(
    request: Request,
    queue: str,
    state: Annotated[str, Query(pattern=STATE_PATTERN)] = "queued",
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=manage.MAX_PAGE)] = 50,
    search: Annotated[str, Query(max_length=200, description="in the id or task name")] = "",
) -> dict[str, Any]:
    app = _app(request)
    manage.check_queue(app, queue)
    return manage.list_jobs(app, queue, state, offset=offset, limit=limit, search=search)


MinutesParam = Annotated[int, Query(ge=1, le=manage.HISTORY_MINUTES, description="how far back")]


@router.get("/history", tags=["queues"], summary="Jobs per minute in every queue")
def history(request: Request, minutes: MinutesParam = 60) -> list[dict[str, Any]]:
    return manage.history(_app(request), minutes=minutes)


@router.get("/queues/{queue}/history", tags=["queues"], summary="Jobs per minute in one queue")
def queue_history(request: Request, queue: str, minutes: MinutesParam = 60) -> list[dict[str, Any]]:
    return manage.history(_app(request), queue, minutes)


@router.post("/queues/{queue}/pause", tags=["queues"], summary="Workers stop taking its jobs")
def pause_queue(request: Request, queue: str) -> dict[str, Any]:
    _queue(request, queue).pause()
    return {"queue": queue, "paused": True}


@router.post("/queues/{queue}/resume", tags=["queues"], summary="Workers take its jobs again")
def resume_queue(request: Request, queue: str) -> dict[str, Any]:
    was_paused = _queue(request, queue).resume()
    return {"queue": queue, "paused": False, "was_paused": was_paused}


@router.post("/queues/{queue}/purge", tags=["queues"], summary="Delete every job of the queue")
def purge_queue(request: Request, queue: str) -> dict[str, Any]:
    return {"queue": queue, "deleted_keys": _queue(request, queue).purge()}


@router.post("/queues/{queue}/retry-failed", tags=["queues"], summary="Run every failed job again")
def retry_failed(request: Request, queue: str) -> dict[str, Any]:
    app = _app(request)
    return {"queue": queue, "retried": manage.retry_failed(app, manage.check_queue(app, queue))}


@router.delete("/queues/{queue}/failed", tags=["queues"], summary="Delete every failed job")
def delete_failed(request: Request, queue: str) -> dict[str, Any]:
    app = _app(request)
    return {"queue": queue, "deleted": manage.delete_failed(app, manage.check_queue(app, queue))}


# -- jobs ---------------------------------------------------------------------------

QueueParam = Annotated[str | None, Query(description="its queue (default: search every queue)")]

# A job id is any string, "/" included ("a/b", sent as a%2Fb, arrives decoded
# as a/b): its routes take the rest of the path. They stay unambiguous, as
# the only routes after an id end it with /cancel or /retry and take POST,
# which nothing else under /jobs/ does.


@router.get("/jobs/{job_id:path}", tags=["jobs"], summary="One job, in full")
def get_job(request: Request, job_id: str, queue: QueueParam = None) -> dict[str, Any]:
    return manage.job_detail(_app(request), job_id, queue)


@router.post("/jobs/{job_id:path}/cancel", tags=["jobs"], summary="Cancel a job that has not ended")
def cancel_job(request: Request, job_id: str, queue: QueueParam = None) -> dict[str, Any]:
    job = manage.job(_app(request), job_id, queue)
    if not job.cancel():
        raise TarefaError(f"job {job_id} has ended already ({job.status}); nothing to cancel")
    return {"id": job_id, "queue": job.queue, "state": "cancelled"}


@router.post("/jobs/{job_id:path}/retry", tags=["jobs"], summary="Run a failed job again")
def retry_job(request: Request, job_id: str, queue: QueueParam = None) -> dict[str, Any]:
    job = manage.job(_app(request), job_id, queue)
    job.retry()
    return {"id": job_id, "queue": job.queue, "state": "queued"}


@router.delete("/jobs/{job_id:path}", tags=["jobs"], summary="Delete a job in any state")
def delete_job(request: Request, job_id: str, queue: QueueParam = None) -> dict[str, Any]:
    job = manage.job(_app(request), job_id, queue)
    job.delete()
    return {"id": job_id, "queue": job.queue, "deleted": True}


# -- workers and health -----------------------------------------------------------


@router.get("/workers", tags=["workers"], summary="Live workers")
def list_workers(request: Request) -> list[dict[str, Any]]:
    return manage.workers(_app(request))


@router.get("/health", tags=["health"], summary="200 when healthy, else 503")
def health(
    request: Request,
    max_ready_age: Annotated[
        float | None, Query(gt=0, description="seconds a ready job may wait before unhealthy")
    ] = None,
) -> JSONResponse:
    ok, report = manage.health(_app(request), max_ready_age)
    return JSONResponse({"ok": ok, **report}, status_code=200 if ok else 503)


@router.get("/cron", tags=["tasks"], summary="Cron schedules with their next run")
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


def _task_json(task) -> dict[str, Any]:
    schema = task_schema(task)
    return {
        "name": task.name,
        "queue": task.options.queue,
        "doc": (task.__doc__ or "").strip(),
        "cron": task.options.cron,
        "enqueue_over_http": schema is not None,
        "schema": schema,
    }


def _task(request: Request, name: str):
    task = _app(request).tasks.get(name)
    if task is None or task.fn is None:
        raise manage.NotFound(f"no task {name!r} in this app")
    return task


@router.get("/tasks", tags=["tasks"], summary="The app's tasks with their argument schemas")
def list_tasks(request: Request) -> list[dict[str, Any]]:
    return [_task_json(t) for _, t in sorted(_app(request).tasks.items()) if t.fn is not None]


@router.get("/tasks/{name}", tags=["tasks"], summary="One task with its argument schema")
def get_task(request: Request, name: str) -> dict[str, Any]:
    return _task_json(_task(request, name))


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


@router.post("/tasks/{name}/jobs", tags=["tasks"], status_code=201, summary="Enqueue a job")
def enqueue(request: Request, name: str, body: Annotated[EnqueueRequest, Body()]) -> dict[str, Any]:
    """Enqueue one job of the task; ``args`` must match the task's schema
    (``GET /tasks/{name}``). With ``options.job_id`` a retried request is
    idempotent: the job is made once (``created`` says whether this call did)."""
    task = _task(request, name)
    arguments = check_arguments(task, body.args)
    options = body.options.model_dump(exclude_none=True)
    job = (task.with_options(**options) if options else task).enqueue(**arguments)
    return {"id": job.id, "queue": job.queue, "task": name, "created": job.created}
