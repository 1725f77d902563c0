"""An App traced with OpenTelemetry (tarefa.contrib.otel), its spans and
metrics kept in memory: each task answers which span was current where it
ran, so a test sees the trace go on in the job's own code."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tarefa import App
from tarefa.contrib.otel import instrument

spans = InMemorySpanExporter()
tracers = TracerProvider()
tracers.add_span_processor(SimpleSpanProcessor(spans))
readings = InMemoryMetricReader()
meters = MeterProvider(metric_readers=[readings])

app = App()
instrument(app, tracer_provider=tracers, meter_provider=meters)


def current_span() -> dict[str, str]:
    """The ids of the span current here, as hex."""
    context = trace.get_current_span().get_span_context()
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


@app.task(retries=0)
def sync_job() -> dict:
    return current_span()


@app.task(retries=0)
async def async_job() -> dict:
    return current_span()


@app.task(retries=0, pool="process")
def process_job() -> dict:
    return current_span()


@app.task(retries=1, backoff=0)
def failing_job() -> None:
    raise ValueError("the CRM said no")
