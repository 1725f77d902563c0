"""What OpenTelemetry costs (tarefa.contrib.otel): enqueues and a worker's
jobs, untraced, traced through the API with no SDK (spans that record
nothing), and traced by the SDK (every span recorded, then dropped by an
exporter that keeps nothing: the cost is tarefa's and the SDK's, not a
collector's).

Run from the repository root (needs Debian's redis-server):

    .venv/bin/python bench/tracing.py            # 3 runs
    .venv/bin/python bench/tracing.py --runs 1   # smoke check

Per run, on its own redis-server: the PING loop of one Redis client; 5,000
``task.enqueue`` calls from one thread (jobs/s); 5,000 jobs run by one
in-process worker (concurrency 10, burst: jobs/s). "x" is a rate over the
same run's PING loop rate; medians over the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import redis
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as bench/tracing.py: bench and tests importable

from bench.core import measure_ping  # noqa: E402
from tarefa import App  # noqa: E402
from tarefa.contrib.otel import instrument  # noqa: E402
from tarefa.worker import Worker  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

JOBS = 5000


class Discard(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def sdk() -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard()))
    return provider


def rates(url: str, setup: str) -> tuple[float, float]:
    """(enqueues/s, worker jobs/s) of a fresh App traced as ``setup`` says."""
    app = App(url)
    if setup == "api":
        instrument(app, tracer_provider=None)  # the global provider: no SDK, no-op spans
    elif setup == "sdk":
        instrument(app, tracer_provider=sdk())

    @app.task(name="bench.noop", retries=0)
    def noop(i: int) -> None:
        return None

    began = time.perf_counter()
    for i in range(JOBS):
        noop.enqueue(i)
    enqueue = JOBS / (time.perf_counter() - began)
    began = time.perf_counter()
    asyncio.run(Worker(app, ["default"], burst=True, concurrency=10).run())
    work = JOBS / (time.perf_counter() - began)
    app.close()
    return enqueue, work


SETUPS = {"none": "untraced", "api": "traced, API only (no SDK)", "sdk": "traced by the SDK"}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    err = Console(stderr=True)
    server = RedisServer(Path(tempfile.mkdtemp(prefix="tarefa-bench-tracing-"))).start()
    try:
        client = redis.Redis.from_url(server.url)
        runs: list[dict[str, float]] = []
        for run in range(args.runs):
            err.print(f"run {run + 1} of {args.runs}")
            client.flushall()
            found = {"ping": measure_ping(client, 2.0)}
            for setup in SETUPS:
                client.flushall()
                found[f"{setup}_enqueue"], found[f"{setup}_work"] = rates(server.url, setup)
            runs.append(found)

        def cell(key: str) -> str:
            rate = statistics.median(run[key] for run in runs)
            ratio = statistics.median(run[key] / run["ping"] for run in runs)
            return f"{rate:,.0f} /s ({ratio:.2f}x)"

        table = Table(title=f"OpenTelemetry's cost, median of {args.runs} runs (x PING loop)")
        for column in ("", "enqueue, one thread", "worker, concurrency 10"):
            table.add_column(column, justify="right" if column else "left")
        table.add_row("PING loop, one client", cell("ping"), "")
        for setup, label in SETUPS.items():
            table.add_row(label, cell(f"{setup}_enqueue"), cell(f"{setup}_work"))
        Console().print(table)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
