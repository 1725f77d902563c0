"""A schemathesis run over the OpenAPI document: requests generated from it,
valid and invalid, against a real Redis holding a few jobs, never get a 5xx,
and every answer is one the document declares for its route, with the body
it declares (test_openapi_errors brings about each declared error)."""

from __future__ import annotations

import itertools

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tarefa.web.server import create_app

from ..tasks import add, always_fails

EXAMPLES = 25  # per operation, of valid requests and of invalid ones
CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]


def test_no_request_gets_a_server_error(app, run_worker):
    add.with_options(job_id="known").enqueue(1, 2)
    always_fails.with_options(retries=0, queue="mail").enqueue("x")
    run_worker(["mail"])
    add.with_options(delay=600).enqueue(3, 4)
    web = create_app(app, allowed_hosts=["testserver"])  # the name schemathesis's client sends
    schema = schemathesis.openapi.from_asgi("/openapi.json", web)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 22  # every endpoint of the API

    for operation, mode in itertools.product(operations, schemathesis.GenerationMode):

        @given(case=operation.as_strategy(mode))
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def no_5xx(case):
            response = case.call()
            case.validate_response(response, checks=CHECKS)
            if case.path.endswith("/health") and response.status_code == 503:
                assert response.json()["ok"] is False  # its answer for "unhealthy"
                return
            assert response.status_code < 500, f"{case.method} {case.path}: {response.text}"

        try:
            no_5xx()
        except Unsatisfiable:  # nothing to get wrong (no parameters, no body)
            assert mode is schemathesis.GenerationMode.NEGATIVE
