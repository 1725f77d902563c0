"""The REST API's tasks (``/api/v1/tasks``): each with the JSON Schema of its
arguments, and enqueueing one by name, its arguments checked against that
schema, so that services in other languages can enqueue safely. Errors as
in api.py.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from pydantic import BaseModel, Field

from .. import manage
from ..schema import check_arguments, task_schema
from ..task import Task
from .api import app_of
from .errors import CHANGE, ERRORS, ArgumentsErrorBody, ErrorBody, ParametersErrorBody, errors

router = APIRouter(prefix="/api/v1")


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
    task = app_of(request).tasks.get(name)
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
    return [_task_json(t) for _, t in sorted(app_of(request).tasks.items()) if t.fn is not None]


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
