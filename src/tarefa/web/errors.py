"""The REST API's error answers: which of tarefa's errors gets which status,
with what body, and how the OpenAPI document declares them. A route lists
the statuses it can answer with ``errors()``; the document holds those, and
no others (test_openapi_errors brings each one about).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from .. import manage
from ..errors import AmbiguousJob, TarefaError
from ..schema import ArgumentsError
from ..store import REDIS_ERRORS, describe_error


class ErrorBody(BaseModel):
    detail: str = Field(description="what went wrong, for a person to read")


class AmbiguousJobBody(ErrorBody):
    queues: list[str] = Field(description="the queues holding a job with this id")


class Issue(BaseModel):
    loc: list[str | int] = Field(description="where: a parameter, or a path into the body")
    msg: str
    type: str


class ParametersErrorBody(BaseModel):
    """FastAPI's answer to parameters or a body that do not fit their schema."""

    detail: list[Issue]


class ArgumentsErrorBody(ErrorBody):
    """Arguments that do not fit the task's schema: where, in ``errors``."""

    errors: list[Issue] = Field(default_factory=list)


ERRORS: dict[int, dict[str, Any]] = {
    400: {
        "model": ErrorBody,
        "description": "The Host header names another server than this one (see "
        "--allowed-host), or a value tarefa cannot take (a queue name)",
    },
    401: {"model": ErrorBody, "description": "Credentials are set, and none that match came"},
    403: {"model": ErrorBody, "description": "A browser sent this change from another site"},
    404: {"model": ErrorBody, "description": "No such queue, job or task"},
    409: {"model": ErrorBody, "description": "The job's state does not allow it"},
    422: {"model": ParametersErrorBody, "description": "A parameter out of its range"},
    503: {"model": ErrorBody, "description": "Redis cannot be reached: why, in detail"},
}
# Every route may be refused by the server's guard (server.py): a request for
# another host, or without the credentials; a change, also when sent from
# another site. Every route but /cron and /tasks reads Redis.
READ, CHANGE = (400, 401, 503), (400, 401, 403, 503)


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error answers a route declares (a route adds its own with ``|``)."""
    return {status: ERRORS[status] for status in statuses}


def declare_only_given_errors(api: FastAPI) -> None:
    """FastAPI declares its 422 (HTTPValidationError) for every route that
    has parameters, even those no value can fail: drop it. A route whose
    parameters can be refused declares its 422 (ParametersErrorBody)."""
    default = api.openapi
    automatic = {"$ref": "#/components/schemas/HTTPValidationError"}

    def openapi() -> dict[str, Any]:
        schema = default()
        for operation in (op for path in schema["paths"].values() for op in path.values()):
            answer = operation["responses"].get("422", {})
            if answer.get("content", {}).get("application/json", {}).get("schema") == automatic:
                del operation["responses"]["422"]
        for unused in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(unused, None)
        return schema

    api.openapi = openapi  # type: ignore[method-assign]


def install_error_handlers(api: FastAPI) -> None:
    """Map tarefa's errors to HTTP answers, each with a clear message."""

    def handler(status: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
        async def handle(request: Request, exc: Exception) -> JSONResponse:
            body: dict[str, Any] = {"detail": str(exc)}
            if isinstance(exc, ArgumentsError) and exc.errors:
                body["errors"] = exc.errors
            if isinstance(exc, AmbiguousJob):
                body["queues"] = exc.queues
            return JSONResponse(body, status_code=status)

        return handle

    async def redis_down(request: Request, exc: Exception) -> JSONResponse:
        detail = describe_error(request.app.state.tarefa.store.url, exc)
        return JSONResponse({"detail": detail}, status_code=503)

    api.add_exception_handler(manage.NotFound, handler(404))
    api.add_exception_handler(AmbiguousJob, handler(409))
    api.add_exception_handler(ArgumentsError, handler(422))
    api.add_exception_handler(ValueError, handler(400))
    api.add_exception_handler(TypeError, handler(400))
    api.add_exception_handler(TarefaError, handler(409))
    for error in REDIS_ERRORS:
        api.add_exception_handler(error, redis_down)
