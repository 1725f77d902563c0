"""Prometheus metrics at ``/metrics``, read from Redis at each scrape, so any
number of dashboard processes report the same figures: jobs per queue and
state, the age of each queue's oldest ready job, whether it is paused, and the
live workers with their running jobs.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .. import manage
from ..app import App


class QueueCollector(Collector):
    """Gauges of the queues and workers of one App's Redis."""

    def __init__(self, app: App):
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
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
        for name in self.app.queues():
            info = manage.queue_info(self.app, name)
            for state, count in info["counts"].items():
                jobs.add_metric([name, state], count)
            oldest.add_metric([name], info["oldest_ready_age"] or 0.0)
            paused.add_metric([name], float(info["paused"]))
        workers = manage.workers(self.app)
        alive = GaugeMetricFamily("tarefa_workers", "Live workers")
        alive.add_metric([], len(workers))
        running = GaugeMetricFamily(
            "tarefa_worker_running_jobs", "Jobs a worker runs now", labels=["worker", "host"]
        )
        for w in workers:
            running.add_metric([w["id"], w["host"]], w["running"])
        yield from (jobs, oldest, paused, alive, running)


def metrics_registry(app: App) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector(app))
    return registry


def render(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The registry in Prometheus's text format, and its content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST
