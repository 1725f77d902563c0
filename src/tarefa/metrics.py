"""Prometheus metrics: the dashboard's ``/metrics`` for a whole Redis, and a
worker's own port (``tarefa worker --metrics-port``).

The dashboard reads everything from Redis at each scrape, so any number of
dashboard processes report the same figures: counters of jobs enqueued,
started, completed, failed and retried and a histogram of their durations, per
queue and task (tarefa.stats), and of jobs found lost (gone from Redis before
they ended: evicted), per queue; gauges of jobs per queue and state, the age of
each queue's oldest ready job, whether it is paused, and the live workers. A
worker's port has the same counters and histogram for its own jobs since it
started, and how many it runs now.
"""

from __future__ import annotations

import socket
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from . import manage
from .hosts import AllowedHosts
from .stats import DURATION_SUM_MS, EVENTS, LOST, field, split_field

if TYPE_CHECKING:
    from .app import App
    from .worker import Worker

Metric = CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily


def job_metrics(stats: Mapping[str, Mapping[str, int]]) -> Iterator[Metric]:
    """Counters per event and the duration histogram, from each queue's
    counts by field (tarefa.stats)."""
    counters = {
        event: CounterMetricFamily(
            f"tarefa_jobs_{event}", f"Jobs {event}, per queue and task", labels=["queue", "task"]
        )
        for event in EVENTS
    }
    durations = HistogramMetricFamily(
        "tarefa_job_duration_seconds",
        "How long attempts ran, whatever their outcome, per queue and task",
        labels=["queue", "task"],
    )
    for queue, counts in sorted(stats.items()):
        events: dict[str, dict[str, int]] = defaultdict(dict)  # task -> event -> count
        buckets: dict[str, dict[str, int]] = defaultdict(dict)  # task -> le -> count
        sums: dict[str, int] = {}
        for raw, n in counts.items():
            name, task = split_field(raw)
            if name in counters:
                events[task][name] = n
            elif name.startswith("le:"):
                buckets[task][name[3:]] = n
            elif name == DURATION_SUM_MS:
                sums[task] = n
        # Every counter of a task, 0 until its first event: a series that only
        # appears with its first failure hides that failure from rate().
        for task, per_event in sorted(events.items()):
            for event, counter in counters.items():
                counter.add_metric([queue, task], per_event.get(event, 0))
        for task, per_bucket in sorted(buckets.items()):
            cumulative, running = [], 0
            for le in sorted(per_bucket, key=float):
                running += per_bucket[le]
                cumulative.append((le, running))
            if cumulative[-1][0] != "+Inf":
                cumulative.append(("+Inf", running))
            durations.add_metric([queue, task], cumulative, sums.get(task, 0) / 1000)
    yield from counters.values()
    yield durations


class QueueCollector(Collector):
    """Everything about the queues and workers of one App's Redis."""

    def __init__(self, app: App):
        self.app = app

    def collect(self) -> Iterator[Metric]:
        store = self.app.store
        queues = self.app.queues()
        stats = {name: store.stats(name) for name in queues}
        yield from job_metrics(stats)
        lost = CounterMetricFamily(
            f"tarefa_jobs_{LOST}",
            "Jobs found gone from Redis before they ended (evicted: see maxmemory-policy)",
            labels=["queue"],
        )
        for name in queues:
            lost.add_metric([name], stats[name].get(field(LOST, ""), 0))
        yield lost
        jobs = GaugeMetricFamily(
            "tarefa_queue_jobs", "Jobs per queue and state", labels=["queue", "state"]
        )
        oldest = GaugeMetricFamily(
            "tarefa_queue_oldest_ready_age_seconds",
            "How long the longest-waiting ready job of the queue has waited",
            labels=["queue"],
        )
        paused = GaugeMetricFamily(
            "tarefa_queue_paused", "1 while the queue is paused", labels=["queue"]
        )
        for name in queues:  # (not manage.queue_info: its totals were read just above)
            for state, count in store.counts(name).items():
                jobs.add_metric([name, state], count)
            oldest.add_metric([name], store.oldest_ready_age(name) or 0.0)
            paused.add_metric([name], float(store.is_paused(name)))
        workers = manage.workers(self.app)
        alive = GaugeMetricFamily("tarefa_workers", "Live workers")
        alive.add_metric([], len(workers))
        running = GaugeMetricFamily(
            "tarefa_worker_running_jobs", "Jobs a worker runs now", labels=["worker", "host"]
        )
        for w in workers:
            running.add_metric([w["id"], w["host"]], w["running"])
        yield from (jobs, oldest, paused, alive, running)


class WorkerCollector(Collector):
    """One worker's own jobs since it started (read from another thread)."""

    def __init__(self, worker: Worker):
        self.worker = worker

    def collect(self) -> Iterator[Metric]:
        yield from job_metrics(self.worker.stats.snapshot())
        running = GaugeMetricFamily(
            "tarefa_worker_running_jobs", "Jobs a worker runs now", labels=["worker", "host"]
        )  # labelled as on the dashboard's /metrics, so the two never mix
        running.add_metric([self.worker.id, socket.gethostname()], len(self.worker.running))
        yield running


def metrics_registry(app: App) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector(app))
    return registry


def render(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The registry in Prometheus's text format, and its content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST


def serve_worker_metrics(worker: Worker, host: str, port: int, allowed_hosts: Iterable[str] = ()):
    """Serve the worker's metrics at http://host:port/metrics from a daemon
    thread; returns the server (``.shutdown()`` stops it). It answers only
    requests naming localhost, 127.0.0.1, [::1], ``host`` or one of
    ``allowed_hosts`` (tarefa.hosts: no page elsewhere reads them)."""
    hosts = AllowedHosts([host, *allowed_hosts], option="--metrics-allowed-host")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WorkerCollector(worker))
    server, _ = start_http_server(port, host, registry)
    # Its thread serves already: only a request sent within microseconds of
    # the port opening could come before the check is in place.
    server.set_app(_only_for(hosts, server.get_app()))
    return server


def _only_for(hosts: AllowedHosts, wsgi_app):
    """``wsgi_app`` for requests whose Host header ``hosts`` allows; 400 for others."""

    def app(environ, start_response):
        header = environ.get("HTTP_HOST")
        if hosts.allows(header):
            return wsgi_app(environ, start_response)
        start_response("400 Bad Request", [("Content-Type", "text/plain; charset=utf-8")])
        return [hosts.refusal(header).encode()]

    return app
