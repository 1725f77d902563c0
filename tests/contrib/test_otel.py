"""OpenTelemetry (tarefa.contrib.otel): a web request's trace goes on through
the enqueue into the job's attempt and its own code, wherever it runs; the
spans follow the messaging conventions; retries and failures are on them;
the metrics count what was sent and processed; and a job whose trace field
is missing or mangled runs all the same."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from opentelemetry import propagate
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.trace import SpanKind, StatusCode

from tarefa import App
from tarefa.contrib.otel import instrument
from tarefa.worker import Worker

from .. import traced_app
from ..conftest import ROOT
from ..traced_app import async_job, failing_job, process_job, sync_job, tracers

request_tracer = tracers.get_tracer("the web app")


@pytest.fixture
def traced(r):
    traced_app.app._store = None
    traced_app.spans.clear()
    yield traced_app.app
    traced_app.app.close()


def run_burst(app: App) -> None:
    asyncio.run(Worker(app, ["default"], burst=True, concurrency=4).run())


def finished(name: str) -> list:
    return [s for s in traced_app.spans.get_finished_spans() if s.name == name]


def test_a_request_trace_goes_on_in_the_job_wherever_it_runs(traced, r):
    with request_tracer.start_as_current_span("POST /webhooks") as request:
        jobs = [sync_job.enqueue(), async_job.enqueue(), process_job.enqueue()]
    trace_id = request.get_span_context().trace_id
    stored = r.hget(f"tarefa:{{default}}:job:{jobs[0].id}", "trace").decode()
    run_burst(traced)

    sends = finished("send default")
    processes = {s.attributes["messaging.message.id"]: s for s in finished("process default")}
    assert len(sends) == 3 and len(processes) == 3
    for send, job in zip(sends, jobs, strict=True):
        assert send.kind is SpanKind.PRODUCER
        assert send.parent.span_id == request.get_span_context().span_id
        assert send.context.trace_id == trace_id
        assert dict(send.attributes) == {
            "messaging.system": "tarefa",
            "messaging.operation.type": "send",
            "messaging.operation.name": "send",
            "messaging.destination.name": "default",
            "messaging.message.id": job.id,
            "tarefa.task.name": send.attributes["tarefa.task.name"],
        }
        process = processes[job.id]
        assert process.kind is SpanKind.CONSUMER
        assert process.parent.span_id == send.context.span_id  # the enqueue's child
        assert process.context.trace_id == trace_id
        assert process.attributes["tarefa.job.attempt"] == 1
        assert process.attributes["tarefa.job.outcome"] == "completed"
        assert process.status.status_code is StatusCode.UNSET
        # The job's own code runs in the attempt's span: a pool thread, the
        # event loop, a job's process (which continues the context it is sent).
        assert job.result(timeout=0) == {
            "trace_id": f"{trace_id:032x}",
            "span_id": f"{process.context.span_id:016x}",
        }
    # The job carries the W3C traceparent of its enqueue's span, and its
    # completed record drops it.
    assert stored.startswith(f"00-{trace_id:032x}-{sends[0].context.span_id:016x}-")
    assert r.hget(f"tarefa:{{default}}:job:{jobs[0].id}", "trace") is None


def test_with_link_the_attempt_starts_a_trace_linked_to_the_enqueue(traced, monkeypatch):
    monkeypatch.setattr(traced.tracing, "link", True)
    with request_tracer.start_as_current_span("POST /webhooks"):
        sync_job.enqueue()
    run_burst(traced)
    (send,) = finished("send default")
    (process,) = finished("process default")
    assert process.parent is None and process.context.trace_id != send.context.trace_id
    (link,) = process.links
    assert link.context.span_id == send.context.span_id


def test_a_retry_and_a_failure_are_errors_on_their_attempts_spans(traced, r):
    job = failing_job.enqueue()
    run_burst(traced)
    assert job.status.value == "failed"
    first, second = sorted(finished("process default"), key=lambda s: s.start_time)
    for span, outcome, attempt in [(first, "retry", 1), (second, "failed", 2)]:
        assert span.attributes["tarefa.job.outcome"] == outcome
        assert span.attributes["tarefa.job.attempt"] == attempt
        assert span.attributes["error.type"] == "ValueError"
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == "the CRM said no"
        (event,) = span.events
        assert event.name == "exception"
        assert event.attributes["exception.type"] == "ValueError"
    # Both attempts continue the one enqueue; a failed record keeps its trace.
    assert first.context.trace_id == second.context.trace_id
    assert r.hexists(f"tarefa:{{default}}:job:{job.id}", "trace")


def test_a_batch_is_one_send_span_that_every_job_continues(traced):
    jobs = sync_job.enqueue_many([(), (), ()])
    run_burst(traced)
    (send,) = finished("send default")
    assert send.attributes["messaging.batch.message_count"] == 3
    assert "messaging.message.id" not in send.attributes
    processes = finished("process default")
    assert sorted(p.attributes["messaging.message.id"] for p in processes) == sorted(
        j.id for j in jobs
    )
    assert {p.parent.span_id for p in processes} == {send.context.span_id}


def test_asyncio_producers_are_traced_too(traced):
    async def produce():
        with request_tracer.start_as_current_span("GET /async") as request:
            job = await sync_job.aenqueue()
            await sync_job.aenqueue_many([()])
        return request, job

    request, job = asyncio.run(produce())
    sends = finished("send default")
    assert [s.parent.span_id for s in sends] == [request.get_span_context().span_id] * 2
    assert sends[0].attributes["messaging.message.id"] == job.id


def test_the_outbox_creates_a_job_that_carries_its_trace(traced):
    with request_tracer.start_as_current_span("POST /orders") as request:
        prepared = sync_job.prepare()
    (create,) = finished("create default")
    assert create.attributes["messaging.operation.type"] == "create"
    assert create.parent.span_id == request.get_span_context().span_id
    fields = dict(zip(prepared.fields[::2], prepared.fields[1::2], strict=True))
    assert fields["trace"].decode().split("-")[2] == f"{create.context.span_id:016x}"


def test_a_job_whose_trace_is_missing_or_mangled_runs_in_a_trace_of_its_own(traced, r):
    jobs = [sync_job.enqueue() for _ in range(3)]
    keys = [f"tarefa:{{default}}:job:{job.id}" for job in jobs]
    r.hdel(keys[0], "trace")  # as a release without tracing stores it
    r.hset(keys[1], "trace", b"\xff not a traceparent")
    r.hset(keys[2], "trace", b'{"traceparent": [1, 2]')
    traced_app.spans.clear()
    run_burst(traced)
    assert all(job.status.value == "completed" for job in jobs)
    processes = finished("process default")
    assert len(processes) == 3 and all(p.parent is None for p in processes)


def test_a_failing_propagator_never_fails_an_enqueue_or_a_job(traced, r, caplog):
    """A propagator that raises (a bug, a misconfiguration) costs the trace,
    never the job: the enqueue stores none, the attempt starts a trace of its own."""

    class Broken(TextMapPropagator):
        def extract(self, carrier, context=None, getter=None):
            raise RuntimeError("broken extract")

        def inject(self, carrier, context=None, setter=None):
            raise RuntimeError("broken inject")

        @property
        def fields(self):
            return set()

    carried = sync_job.enqueue()  # stored with its trace, before the break
    previous = propagate.get_global_textmap()
    propagate.set_global_textmap(Broken())
    try:
        plain = sync_job.enqueue()
        assert not r.hexists(f"tarefa:{{default}}:job:{plain.id}", "trace")
        run_burst(traced)
    finally:
        propagate.set_global_textmap(previous)
    assert carried.status.value == plain.status.value == "completed"
    assert "the trace context could not be written into the job" in caplog.text
    assert "the job's trace context could not be read" in caplog.text


def test_testing_mode_traces_the_inline_attempt(traced):
    with traced.testing(), request_tracer.start_as_current_span("test") as request:
        seen = sync_job.enqueue().result(timeout=0)
    (process,) = finished("process default")
    assert process.context.trace_id == request.get_span_context().trace_id
    assert seen["span_id"] == f"{process.context.span_id:016x}"


def test_the_metrics_count_what_was_sent_and_processed(traced):
    before = _points(traced_app.readings)
    sync_job.enqueue_many([(), ()])
    failing_job.enqueue()
    run_burst(traced)
    after = _points(traced_app.readings)

    def added(name: str, task: str, **attributes: str) -> float:
        attributes.update({"tarefa.task.name": task, "messaging.destination.name": "default"})
        return _total(after, name, attributes) - _total(before, name, attributes)

    assert added("messaging.client.sent.messages", sync_job.name) == 2
    assert added("messaging.client.operation.duration", sync_job.name) == 1  # one batch
    assert added("messaging.client.consumed.messages", failing_job.name) == 2  # two attempts
    assert added("messaging.process.duration", sync_job.name) == 2
    failed = {"error.type": "ValueError"}
    assert added("messaging.process.duration", failing_job.name, **failed) == 2


def test_queue_metrics_read_the_figures_from_redis(r):
    app = App()
    reader = InMemoryMetricReader()
    instrument(app, meter_provider=MeterProvider(metric_readers=[reader]), queue_metrics=True)

    @app.task
    def noop() -> None:
        pass

    try:
        noop.enqueue_many([(), (), ()])
        points = _points(reader)
    finally:
        app.close()
    assert _total(points, "tarefa.queue.jobs", {"queue": "default", "state": "queued"}) == 3
    enqueued = {"queue": "default", "task": noop.name, "event": "enqueued"}
    assert _total(points, "tarefa.jobs", enqueued) == 3


def test_instrument_refuses_what_it_cannot_use():
    with pytest.raises(TypeError, match="True or False"):
        instrument(App(), link="yes")
    with pytest.raises(TypeError, match="takes a tarefa App, not str"):
        instrument("tests.tasks:app")
    with pytest.raises(TypeError, match="tracer_provider has no get_tracer"):
        instrument(App(), tracer_provider=MeterProvider())


def test_without_opentelemetry_installed_jobs_run_as_ever(redis_url):
    code = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None  # as if it were not installed\n"
        "import asyncio, tarefa, tarefa.outbox\n"
        "from tarefa.worker import Worker\n"
        "from tests.tasks import add, app\n"
        "job = add.enqueue(2, 3)\n"
        "asyncio.run(Worker(app, ['default'], burst=True).run())\n"
        "assert job.result(timeout=0) == 5 and app.tracing is None\n"
    )
    env = dict(os.environ, TAREFA_URL=redis_url, PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=120)


def _points(reader: InMemoryMetricReader) -> list[tuple[str, dict, float]]:
    """Each point read: its metric, its attributes, and a sum's value or a
    histogram's count."""
    points = []
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    value = point.count if hasattr(point, "count") else point.value
                    points.append((metric.name, dict(point.attributes), value))
    return points


def _total(points: list[tuple[str, dict, float]], name: str, attributes: dict) -> float:
    """The sum of the points of ``name`` that have ``attributes`` (and maybe more)."""
    return sum(
        value
        for metric, found, value in points
        if metric == name and attributes.items() <= found.items()
    )
