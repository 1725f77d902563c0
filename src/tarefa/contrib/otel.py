"""OpenTelemetry for tarefa (``pip install 'tarefa[otel]'``): a producer span
for each enqueue, a consumer span for each attempt, and their metrics.

    from tarefa.contrib.otel import instrument

    app = App()
    instrument(app)  # in the module that makes the App: workers import it too

The job carries its enqueue's trace context (W3C ``traceparent``, through
the configured propagator), so a web request's trace goes on in the worker:
the attempt's span is the enqueue span's child, or with ``link=True`` the
root of a trace of its own, linked to it. Spans follow OpenTelemetry's
messaging conventions: ``send <queue>`` (``create <queue>`` for
``tarefa.outbox``, whose relay sends later) and ``process <queue>``, with
``messaging.system`` "tarefa", ``messaging.destination.name`` the queue and
``messaging.message.id`` the job's id. A retry or a failure sets the span's
status to error and records the exception.

Metrics, through the meter provider: ``messaging.client.sent.messages`` and
``messaging.client.operation.duration`` for enqueues,
``messaging.client.consumed.messages`` and ``messaging.process.duration``
for attempts. With ``queue_metrics=True`` (one process is enough, each
collection reads Redis), the figures the dashboard's ``/metrics`` gives
Prometheus too: ``tarefa.jobs`` by queue, task and event, and
``tarefa.queue.jobs`` by queue and state.

The tracer and meter providers are the global ones unless given; tarefa
configures no SDK and no exporter: that is the application's choice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import orjson
from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate
from opentelemetry import trace as otel_trace
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, TracerProvider

from .. import __version__
from ..app import App
from ..records import Outcome, OutcomeKind
from ..serializer import load_error
from ..stats import EVENTS, split_field

log = logging.getLogger("tarefa.otel")

SYSTEM = "tarefa"
Carrier = dict[str, str]


def instrument(
    app: App,
    *,
    link: bool = False,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    queue_metrics: bool = False,
) -> None:
    """Trace and measure every enqueue and attempt of ``app``'s jobs."""
    if not isinstance(app, App):
        raise TypeError(f"instrument takes a tarefa App, not {type(app).__name__}")
    if not isinstance(link, bool) or not isinstance(queue_metrics, bool):
        raise TypeError("link and queue_metrics are True or False")
    for name, provider, method in [
        ("tracer_provider", tracer_provider, "get_tracer"),
        ("meter_provider", meter_provider, "get_meter"),
    ]:
        if provider is not None and not callable(getattr(provider, method, None)):
            raise TypeError(f"{name} has no {method}(): {provider!r}")
    app.tracing = OpenTelemetry(link, tracer_provider, meter_provider)
    if queue_metrics:
        observe_queues(app, meter_provider)


def as_field(carrier: Carrier) -> bytes | None:
    """A propagator's carrier as a job's ``trace`` field: the ``traceparent``
    alone as it is (short: a job's hash stays compact), else JSON."""
    if not carrier:
        return None
    if carrier.keys() == {"traceparent"}:
        return carrier["traceparent"].encode()
    return orjson.dumps(carrier)


def extract(trace: bytes | None) -> otel_context.Context:
    """The context a job's ``trace`` field carries; an empty one (the job's
    spans start a trace of their own) if the propagator fails on it: a
    tracer's trouble never fails a job."""
    try:
        return propagate.extract(from_field(trace))
    except Exception:
        log.exception("the job's trace context could not be read: it starts a trace of its own")
        return otel_context.Context()


def from_field(trace: bytes | None) -> Carrier:
    if not trace:
        return {}
    if trace.startswith(b"{"):
        try:
            carrier = orjson.loads(trace)
        except orjson.JSONDecodeError:
            return {}
        return carrier if isinstance(carrier, dict) else {}
    return {"traceparent": trace.decode(errors="replace")}


class OpenTelemetry:
    """The App's tracer (tarefa.tracing.Tracing) on the OpenTelemetry API."""

    def __init__(
        self,
        link: bool,
        tracer_provider: TracerProvider | None,
        meter_provider: MeterProvider | None,
    ):
        self.link = link
        self.tracer = otel_trace.get_tracer("tarefa", __version__, tracer_provider)
        meter = metrics.get_meter("tarefa", __version__, meter_provider)
        self.sent = meter.create_counter(
            "messaging.client.sent.messages", "{message}", "Jobs enqueued"
        )
        self.send_duration = meter.create_histogram(
            "messaging.client.operation.duration", "s", "How long enqueues took"
        )
        self.consumed = meter.create_counter(
            "messaging.client.consumed.messages", "{message}", "Attempts started"
        )
        self.process_duration = meter.create_histogram(
            "messaging.process.duration", "s", "How long attempts ran, whatever their outcome"
        )

    @contextmanager
    def sending(
        self, queue: str, task: str, job_ids: Sequence[str], operation: str = "send"
    ) -> Iterator[bytes | None]:
        attributes = _attributes(queue, task, operation)
        if len(job_ids) == 1:
            attributes["messaging.message.id"] = job_ids[0]
        else:
            attributes["messaging.batch.message_count"] = len(job_ids)
        began = time.perf_counter()
        error = None
        with self.tracer.start_as_current_span(
            f"{operation} {queue}", kind=SpanKind.PRODUCER, attributes=attributes
        ):
            try:
                yield self.current()
            except Exception as exc:
                error = type(exc).__name__
                raise
            finally:
                measured = _attributes(queue, task, operation, error)
                self.send_duration.record(time.perf_counter() - began, measured)
                if error is None:
                    self.sent.add(len(job_ids), measured)

    @contextmanager
    def processing(
        self, queue: str, task: str, job_id: str, attempt: int, trace: bytes | None
    ) -> Iterator[Attempt]:
        sent_from = extract(trace)
        links: list[Link] = []
        if self.link:
            context = otel_trace.get_current_span(sent_from).get_span_context()
            links = [Link(context)] if context.is_valid else []
            sent_from = otel_context.Context()  # a root: a trace of its own
        attributes = _attributes(queue, task, "process")
        attributes["messaging.message.id"] = job_id
        attributes["tarefa.job.attempt"] = attempt
        self.consumed.add(1, _attributes(queue, task, "process"))
        began = time.perf_counter()
        with self.tracer.start_as_current_span(
            f"process {queue}", sent_from, SpanKind.CONSUMER, attributes, links
        ) as span:
            ended = Attempt(span)
            try:
                yield ended
            finally:
                measured = _attributes(queue, task, "process", ended.error_type)
                self.process_duration.record(time.perf_counter() - began, measured)

    def current(self) -> bytes | None:
        carrier: Carrier = {}
        try:
            propagate.inject(carrier)
        except Exception:  # a propagator's bug must not fail the enqueue: no trace, then
            log.exception("the trace context could not be written into the job")
            return None
        return as_field(carrier)

    @contextmanager
    def attached(self, trace: bytes | None) -> Iterator[object]:
        token = otel_context.attach(extract(trace))
        try:
            yield None
        finally:
            otel_context.detach(token)


class Attempt:
    """An attempt's span, told the attempt's outcome."""

    def __init__(self, span: Span):
        self.span = span
        self.error_type: str | None = None

    def ended(self, outcome: Outcome) -> None:
        self.span.set_attribute("tarefa.job.outcome", outcome.kind.value)
        if outcome.kind is OutcomeKind.COMPLETED:
            return
        error = load_error(outcome.value)
        self.error_type = error.get("type", "Error")
        self.span.set_attribute("error.type", self.error_type)
        self.span.set_status(Status(StatusCode.ERROR, error.get("message", "")))
        if outcome.kind is OutcomeKind.RETRY:
            self.span.set_attribute("tarefa.job.retry_in_ms", outcome.ms)
        if outcome.error is not None:
            self.span.record_exception(outcome.error)
        else:  # raised in a job's process: known by its type, message and traceback
            self.span.add_event(
                "exception",
                {
                    "exception.type": self.error_type,
                    "exception.message": error.get("message", ""),
                    "exception.stacktrace": error.get("traceback", ""),
                },
            )


def _attributes(
    queue: str, task: str, operation: str, error_type: str | None = None
) -> dict[str, str | int]:
    attributes: dict[str, str | int] = {
        "messaging.system": SYSTEM,
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
        "messaging.destination.name": queue,
        "tarefa.task.name": task,
    }
    if error_type is not None:
        attributes["error.type"] = error_type
    return attributes


def observe_queues(app: App, meter_provider: MeterProvider | None = None) -> None:
    """The figures the dashboard's ``/metrics`` gives, as observable
    instruments: each collection reads them from Redis."""
    meter = metrics.get_meter("tarefa", __version__, meter_provider)

    def job_events(options: CallbackOptions) -> Iterable[Observation]:
        for queue in app.queues():
            for raw, n in app.store.stats(queue).items():
                event, task = split_field(raw)
                if task and event in EVENTS:
                    yield Observation(n, {"queue": queue, "task": task, "event": event})

    def job_states(options: CallbackOptions) -> Iterable[Observation]:
        for queue in app.queues():
            for state, count in app.store.counts(queue).items():
                yield Observation(count, {"queue": queue, "state": state})

    meter.create_observable_counter(
        "tarefa.jobs", [job_events], "{job}", "Jobs per queue, task and event (tarefa.stats)"
    )
    meter.create_observable_gauge(
        "tarefa.queue.jobs", [job_states], "{job}", "Jobs per queue and state"
    )
