"""Fuzzing what comes from outside: job payloads and options (anyone who can
write to Redis can write them) and the REST API's inputs that schemathesis
does not reach (tests/web/test_openapi_fuzz.py runs it over the OpenAPI
operations): the Authorization and Origin headers, and ids and queue names
of any unicode in paths. No crash: bad input gets a clear error of the
documented kinds, a failed job, or a 4xx; never anything else, and the worker
goes on."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tarefa import App, JobState, TaskOptions
from tarefa.records import Leased, Outcome
from tarefa.serializer import JsonSerializer, PickleSerializer, decode_call
from tarefa.web.server import Credentials, create_app
from tarefa.worker import Worker
from tarefa.worker.execution import _options, _prepare, execute

from ..tasks import add

FUZZ = settings(max_examples=200, deadline=None, database=None)
# Examples that each run a worker against Redis, or a request through the app.
FUZZ_SLOW = settings(
    max_examples=25, deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip
FUZZ_HTTP = settings(
    max_examples=100, deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)  # fmt: skip

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
# Bytes as Redis could hold them: anything, or JSON of any shape.
stored = st.binary(max_size=200) | json_values.map(lambda v: orjson.dumps(v, option=0))
OPTION_NAMES = [f.name for f in dataclasses.fields(TaskOptions)]
# Numbers at the edges: what overflows, rounds or wraps if a check is missing.
edge_numbers = (
    st.integers(-(2**63), 2**63 - 1) | st.floats() | st.sampled_from([0, 1e-300, 1e300, 2**62])
)
NUMBERS = ("retries", "timeout", "backoff", "backoff_max", "result_ttl")  # checked, not all
option_overrides = (
    st.fixed_dictionaries({}, optional={n: edge_numbers for n in NUMBERS}).map(orjson.dumps)
    | st.fixed_dictionaries({}, optional={n: edge_numbers | json_values for n in OPTION_NAMES}).map(
        orjson.dumps
    )
    | st.dictionaries(st.text(max_size=8), json_values, max_size=3).map(orjson.dumps)
    | stored
    | st.just(b"")
)
# [args, kwargs] of any JSON: a call that decodes, and may or may not fit the task.
calls = st.tuples(
    st.lists(edge_numbers | json_values, max_size=3),
    st.dictionaries(st.sampled_from(["a", "b", "label"]) | st.text(max_size=3), json_values),
).map(orjson.dumps)


# -- the payload decoder --------------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=300))
def test_the_json_serializer_loads_any_bytes_or_raises_valueerror(data):
    try:
        JsonSerializer().loads(data)
    except ValueError:  # orjson.JSONDecodeError is one; a pickle is refused with one
        pass


@FUZZ
@given(data=st.binary(max_size=300).filter(lambda d: d[:1] != b"\x80"))
def test_the_pickle_serializer_reads_anything_but_a_pickle_as_json(data):
    try:
        PickleSerializer().loads(data)
    except ValueError:
        pass


fuzz_app = App("redis://127.0.0.1:1")  # never connects: nothing here reaches Redis


@fuzz_app.task(name="fuzz:add", retries=2)
def fuzz_add(a: int, b: int) -> int:
    return a + b


@fuzz_app.task(name="fuzz:echo")
async def fuzz_echo(*args, **kwargs) -> list:
    return [list(args), kwargs]


@fuzz_app.task(name="fuzz:fails")
def fuzz_fails(*args, **kwargs) -> None:
    raise RuntimeError("failed, to be retried per its options")


@fuzz_app.task(name="fuzz:merge")
def fuzz_merge(results: list, label: str) -> str:
    return f"{label}: {results}"


@FUZZ
@given(payload=stored)
def test_decode_call_gives_args_and_kwargs_or_a_clear_error(payload):
    try:
        args, kwargs = decode_call(fuzz_app.serializer, payload)
    except (ValueError, TypeError) as exc:
        assert str(exc)
    else:
        assert isinstance(args, list) and isinstance(kwargs, dict)


@FUZZ
@given(overrides=option_overrides)
def test_option_overrides_are_checked_as_options(overrides):
    try:
        options = _options(TaskOptions(), overrides)
    except (ValueError, TypeError) as exc:
        assert str(exc)
    else:
        assert isinstance(options, TaskOptions)


leased_jobs = st.builds(
    Leased,
    id=st.text(min_size=1, max_size=20),
    task=st.sampled_from(["fuzz:add", "fuzz:echo", "fuzz:fails", "fuzz:merge"])
    | st.text(max_size=20),
    payload=calls | stored,
    attempts=st.integers(1, 5) | st.integers(1000, 5000),
    token=st.just(b"1"),
    options=option_overrides,
    stalls=st.integers(0, 3),
    parent_results=st.none() | st.lists(st.none() | stored, max_size=3),
)


@FUZZ
@given(job=leased_jobs)
def test_a_job_that_cannot_run_is_an_outcome_never_an_exception(job):
    prepared = _prepare(fuzz_app, job)
    if isinstance(prepared, Outcome):
        assert prepared.kind == "failed"
        error = orjson.loads(prepared.value)["type"]
        assert error in ("UnknownTask", "PayloadError", "ArgumentError")


def assert_runs_to_an_outcome_redis_can_store(job: Leased) -> Outcome:
    with ThreadPoolExecutor(2) as executor:
        outcome = asyncio.run(execute(fuzz_app, "default", job, executor))
    assert outcome.kind in ("completed", "retry", "failed")
    assert isinstance(outcome.value, bytes)
    assert isinstance(outcome.ms, int) and -1 <= outcome.ms < 2**53  # a Lua number, exactly
    if outcome.kind != "completed":
        assert orjson.loads(outcome.value)["type"]
    return outcome


@FUZZ
@given(job=leased_jobs)
def test_running_any_job_ends_in_an_outcome_redis_can_store(job):
    assert_runs_to_an_outcome_redis_can_store(job)


@FUZZ
@given(
    overrides=st.fixed_dictionaries({}, optional={n: edge_numbers for n in NUMBERS}),
    attempts=st.integers(1, 10_000),
)
def test_a_failing_job_with_any_numbers_for_options_is_retried_or_failed(overrides, attempts):
    job = Leased("j", "fuzz:fails", b"[[],{}]", attempts, b"1", orjson.dumps(overrides))
    outcome = assert_runs_to_an_outcome_redis_can_store(job)
    error = orjson.loads(outcome.value)["type"]
    assert error in ("RuntimeError", "PayloadError")  # the job's own, or options refused


# -- garbage in a real job hash, run by a real worker ---------------------------------


def undecodable(payload: bytes) -> bool:
    try:
        decode_call(fuzz_app.serializer, payload)
    except (ValueError, TypeError):
        return True
    return False


def unusable(options: bytes) -> bool:
    try:
        _options(add.options, options)
    except (ValueError, TypeError):
        return True
    return False


@FUZZ_SLOW
@given(
    payloads=st.lists(stored.filter(undecodable), min_size=1, max_size=3),
    options=st.lists(option_overrides.filter(unusable), min_size=1, max_size=3),
)
def test_garbage_written_into_a_job_fails_it_and_the_worker_goes_on(app, r, payloads, options):
    r.flushall()
    good = add.with_options(job_id="good").enqueue(1, 2)
    garbage = [
        *(["task", add.name, "payload", p] for p in payloads),
        *(["task", add.name, "payload", b"[[1,2],{}]", "options", o] for o in options),
    ]
    for n, fields in enumerate(garbage):
        app.store.enqueue("default", f"garbage-{n}", (0, 0, ""), fields)
    asyncio.run(Worker(app, burst=True).run())
    assert good.result(timeout=0) == 3
    with TestClient(create_app(app), base_url="http://localhost") as client:
        for n in range(len(garbage)):
            job = app.job(f"garbage-{n}", queue="default")
            assert job.status is JobState.FAILED and job.attempts == 1
            assert job.error["type"] == "PayloadError", job.error
            assert client.get(f"/api/v1/jobs/garbage-{n}").status_code == 200  # shown as it is


# -- the REST API's inputs -------------------------------------------------------------

TOKEN = "t0ken-of-the-operator"
USER, PASSWORD = "ops", "pa55-of-the-operator"
RIGHT = {f"Bearer {TOKEN}", "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}

schemes = st.sampled_from(["Bearer", "bearer", "Basic", "basic", "Digest", ""])
credential_texts = st.text(max_size=60) | st.binary(max_size=60).map(
    lambda b: base64.b64encode(b).decode()
)
header_values = (
    st.binary(max_size=80)
    | st.text(max_size=80).map(lambda t: t.encode())
    | st.tuples(schemes, credential_texts).map(lambda pair: f"{pair[0]} {pair[1]}".encode())
)


@pytest.fixture
def guarded(app):
    credentials = Credentials(token=TOKEN, user=USER, password=PASSWORD)
    with TestClient(create_app(app, credentials), base_url="http://localhost") as client:
        yield client


@FUZZ_HTTP
@given(authorization=header_values)
def test_any_authorization_header_is_refused_with_401(guarded, app, authorization):
    value = authorization.replace(b"\r", b"").replace(b"\n", b"").strip(b" \t")
    assume(value.decode("latin-1") not in RIGHT)
    headers = [(b"authorization", value)]
    for method, path in (("GET", "/api/v1/queues"), ("POST", "/api/v1/queues/default/purge"),
                         ("DELETE", "/api/v1/jobs/x"), ("GET", "/")):  # fmt: skip
        response = guarded.request(method, path, headers=headers)
        assert response.status_code == 401, (method, path, value, response.text)
        assert response.headers["www-authenticate"]
    right = {"authorization": f"Bearer {TOKEN}"}
    assert guarded.request("GET", "/api/v1/queues", headers=right).status_code == 200


@FUZZ_HTTP
@given(
    origin=st.binary(max_size=60)
    | st.text(max_size=60).map(lambda t: t.encode("utf-8"))
    | st.tuples(st.sampled_from(["http://", "https://", "//", ""]), st.text(max_size=40)).map(
        lambda pair: "".join(pair).encode("utf-8")
    )
)
def test_any_origin_header_on_a_change_gets_an_answer_not_a_crash(app, origin):
    origin = origin.replace(b"\r", b"").replace(b"\n", b"").strip(b" \t")
    with TestClient(create_app(app), base_url="http://localhost") as client:
        response = client.post("/api/v1/jobs/nope/cancel", headers=[(b"origin", origin)])
    # Refused as cross-site, or let through to "no such job".
    assert response.status_code in (403, 404), (origin, response.text)


@pytest.fixture
def client(app):
    with TestClient(create_app(app), base_url="http://localhost") as client:
        yield client


@FUZZ_HTTP
@given(job_id=st.text(min_size=1, max_size=40), queue=st.text(min_size=1, max_size=40))
def test_any_unicode_id_or_queue_name_in_a_path_gets_an_answer_not_a_crash(
    client, app, job_id, queue
):
    job_id, queue = quote(job_id, safe=""), quote(queue, safe="")
    requests = [
        ("GET", f"/api/v1/jobs/{job_id}"), ("POST", f"/api/v1/jobs/{job_id}/cancel"),
        ("POST", f"/api/v1/jobs/{job_id}/retry"), ("DELETE", f"/api/v1/jobs/{job_id}"),
        ("GET", f"/api/v1/queues/{queue}"), ("GET", f"/api/v1/queues/{queue}/jobs"),
        ("GET", f"/api/v1/queues/{queue}/history"), ("POST", f"/api/v1/queues/{queue}/pause"),
        ("POST", f"/api/v1/queues/{queue}/purge"), ("DELETE", f"/api/v1/queues/{queue}/failed"),
        ("GET", f"/api/v1/tasks/{job_id}"), ("POST", f"/api/v1/tasks/{job_id}/jobs"),
    ]  # fmt: skip
    for method, path in requests:
        response = client.request(method, path, json={"args": {}})
        assert response.status_code < 500, (method, path, response.text)
        if method != "GET":  # no such job, queue or task: nothing to change
            assert 400 <= response.status_code < 500, (method, path, response.text)
    assert app.queues() == []  # nothing was made
