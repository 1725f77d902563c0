"""The OpenAPI document declares, for each route, the error answers it gives
and only those: every declared error is brought about here, on a real Redis
(or none, for 503), and its status and body are checked against the
document by schemathesis's conformance checks. (test_openapi_fuzz checks
that no generated request gets an answer the document does not declare.)"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from schemathesis.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tarefa import App
from tarefa.web.server import Credentials, create_app

from ..tasks import add

CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]
HOST = "testserver"  # the name schemathesis's client sends


@dataclass
class Error:
    """A request that gets ``status``: from the app ``on``, with these parts."""

    status: int
    on: str = "up"  # up: the tests' Redis; down: no Redis; locked: credentials set
    path: dict[str, str] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None


OTHER_HOST = Error(400, headers={"host": "evil.example"})
NO_CREDENTIALS = Error(401, on="locked")
CROSS_SITE = Error(403, headers={"origin": "http://evil.example"})
REDIS_DOWN = Error(503, on="down")
READ = [OTHER_HOST, NO_CREDENTIALS, REDIS_DOWN]
CHANGE = [*READ, CROSS_SITE]
NO_QUEUE = Error(404, path={"queue": "nope"})
NO_JOB = Error(404, path={"job_id": "ghost"})
TWICE = Error(409, path={"job_id": "twice"})  # in two queues, and no ?queue=
DONE = Error(409, path={"job_id": "done"})  # a completed job
NO_TASK = Error(404, path={"name": "tests.tasks:nope"})
ADD = {"args": {"a": 1, "b": 2}}
CLEAN = {"state": "failed", "older_than": "7d"}

# Each route's errors, with a request that gets each.
ERRORS: dict[tuple[str, str], list[Error]] = {
    ("GET", "/queues"): READ,
    ("GET", "/queues/{queue}"): [*READ, NO_QUEUE],
    ("GET", "/queues/{queue}/jobs"): [*READ, NO_QUEUE, Error(422, query={"limit": 0})],
    ("GET", "/history"): [*READ, Error(422, query={"minutes": 0})],
    ("GET", "/queues/{queue}/history"): [*READ, NO_QUEUE, Error(422, query={"minutes": 0})],
    ("POST", "/queues/{queue}/pause"): [*CHANGE, NO_QUEUE],
    ("POST", "/queues/{queue}/resume"): [*CHANGE, NO_QUEUE],
    ("POST", "/queues/{queue}/purge"): [*CHANGE, NO_QUEUE],
    ("POST", "/queues/{queue}/retry-failed"): [*CHANGE, NO_QUEUE],
    ("DELETE", "/queues/{queue}/failed"): [*CHANGE, NO_QUEUE],
    ("POST", "/queues/{queue}/clean"): [
        *(Error(e.status, e.on, e.path, e.query, e.headers, CLEAN) for e in CHANGE),
        Error(404, path={"queue": "nope"}, body=CLEAN),
        Error(422, body={"state": "queued", "older_than": 60}),
        Error(422, body={"state": "failed", "older_than": "a week"}),
    ],
    ("GET", "/jobs/{job_id}"): [*READ, NO_JOB, Error(400, query={"queue": "no queue"}), TWICE],
    ("POST", "/jobs/{job_id}/cancel"): [*CHANGE, NO_JOB, DONE, TWICE],
    ("POST", "/jobs/{job_id}/retry"): [*CHANGE, NO_JOB, Error(409), TWICE],  # "waits": not failed
    ("POST", "/jobs/{job_id}/run-now"): [*CHANGE, NO_JOB, DONE, TWICE],  # "done": not scheduled
    ("DELETE", "/jobs/{job_id}"): [*CHANGE, NO_JOB, TWICE],
    ("GET", "/workers"): READ,
    # Open to load balancers (no 401); unhealthy is a report, not an error body.
    ("GET", "/health"): [OTHER_HOST, REDIS_DOWN, Error(422, query={"max_ready_age": -1})],
    ("GET", "/cron"): [OTHER_HOST, NO_CREDENTIALS],
    ("GET", "/tasks"): [OTHER_HOST, NO_CREDENTIALS],
    ("GET", "/tasks/{name}"): [OTHER_HOST, NO_CREDENTIALS, NO_TASK],
    ("POST", "/tasks/{name}/jobs"): [
        *(Error(e.status, e.on, e.path, e.query, e.headers, ADD) for e in CHANGE),
        Error(404, path={"name": "tests.tasks:nope"}, body=ADD),
        Error(400, path={"name": "tests.tasks:record"}, body={"args": {"tag": "x" * 2**20}}),
        Error(409, on="durable", path={"name": "tests.durable:noop"}, body={"args": {}}),
        Error(422, body={"args": [1, 2]}),  # not this shape: FastAPI's list of issues
        Error(422, body={"args": {"a": "1", "b": 2}}),  # not the task's schema: errors
    ],
}
DEFAULTS = {"queue": "default", "job_id": "waits", "name": "tests.tasks:add"}


@pytest.fixture
def apps(app, run_worker, private_redis):
    add.with_options(job_id="done").enqueue(1, 1)
    run_worker()
    add.with_options(job_id="waits", delay=600).enqueue(1, 1)
    for queue in ("default", "other"):
        add.with_options(job_id="twice", queue=queue, delay=600).enqueue(1, 1)
    down = App("redis://127.0.0.1:1/0")
    down.task(name=add.name)(add.fn)
    # Durable enqueues on a Redis without its append-only file: refused,
    # whether the server knows WAITAOF (NotDurable) or not (DurableUnsupported).
    durable = App(private_redis(aof=False).url, durable=True)
    durable.task(name="tests.durable:noop")(lambda: None)
    yield {
        "up": create_app(app, allowed_hosts=[HOST]),
        "down": create_app(down, allowed_hosts=[HOST]),
        "locked": create_app(app, Credentials(token="s3cret"), allowed_hosts=[HOST]),
        "durable": create_app(durable, allowed_hosts=[HOST]),
    }
    down.close()
    durable.close()


def test_each_route_declares_the_errors_it_gives(apps):
    schema = schemathesis.openapi.from_asgi("/openapi.json", apps["up"])
    document = apps["up"].openapi()
    declared = {
        (method.upper(), path.removeprefix("/api/v1")): {
            int(status) for status in op["responses"] if int(status) >= 400
        }
        for path, operations in document["paths"].items()
        for method, op in operations.items()
    }
    assert {route: {e.status for e in errors} for route, errors in ERRORS.items()} == declared

    for (method, path), errors in ERRORS.items():
        operation = schema[f"/api/v1{path}"][method]
        for error in errors:
            names = {p.name for p in operation.path_parameters}
            case = operation.Case(
                path_parameters={n: error.path.get(n, DEFAULTS[n]) for n in names},
                query=error.query or None,
                headers=error.headers or None,
                **({"body": error.body} if error.body is not None else {}),
            )
            response = case.call(app=apps[error.on])
            where = f"{method} {path} on {error.on} {error}"
            assert response.status_code == error.status, (where, response.text)
            case.validate_response(response, checks=CHECKS)
