"""Prometheus metrics: the dashboard's ``/metrics`` for a whole Redis, and a
worker's own port (``tarefa worker --metrics-port``).

The two never report the same thing, so a Prometheus that scrapes both
counts every job once. The dashboard reads everything from Redis at each
scrape, so any number of dashboard processes report the same figures: the
queue-wide counters of jobs enqueued, started, completed, failed and retried
and a histogram of their durations, per queue and task (tarefa.stats), and of
jobs found lost (gone from Redis before they ended: evicted), per queue;
gauges of jobs per queue and state, the age of each queue's oldest ready job,
whether it is paused, the live workers (in all, per queue, and the jobs each
runs), and Redis's memory. A worker's port has only what is its own, under
names of its own (``tarefa_worker_*``): its attempts since it started per
queue and task, their durations, the jobs it runs now, its slots, and its
process (CPU, memory, open files).
"""

from __future__ import annotations

import socket
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import TYPE_CHECKING

import orjson
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    ProcessCollector,
    generate_latest,
    make_wsgi_app,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from . import manage
from .hosts import AllowedHosts
from .stats import DURATION_BUCKETS, DURATION_SUM_MS, EVENTS, LOST, field, split_field

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

    from .app import App
    from .worker import Worker

Metric = CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily
WORKER_EVENTS = tuple(e for e in EVENTS if e != "enqueued")  # a worker enqueues nothing
ZERO_BUCKETS = [f"{b:g}" for b in DURATION_BUCKETS]


def job_metrics(
    stats: Mapping[str, Mapping[str, int]],
    seeds: Iterable[tuple[str, str]] = (),
    prefix: str = "tarefa_",
    events: Iterable[str] = EVENTS,
    whose: str = "per queue and task",
) -> Iterator[Metric]:
    """Counters per event and the duration histogram, from each queue's
    counts by field (tarefa.stats). ``seeds``: (queue, task) pairs exported
    at 0 before their first event, so that rate() and increase() see that
    event too (a series that appears at 1 hides the 1)."""
    counters = {
        event: CounterMetricFamily(
            f"{prefix}jobs_{event}", f"Jobs {event}, {whose}", labels=["queue", "task"]
        )
        for event in events
    }
    durations = HistogramMetricFamily(
        f"{prefix}job_duration_seconds",
        f"How long attempts ran, whatever their outcome, {whose}",
        labels=["queue", "task"],
    )
    tasks = _by_task(stats)
    for seed in seeds:
        tasks.setdefault(seed, TaskCounts())
    for (queue, task), counts in sorted(tasks.items()):
        # Every counter of a task, 0 until its first event: a series that only
        # appears with its first failure hides that failure from rate().
        for event, counter in counters.items():
            counter.add_metric([queue, task], counts.events.get(event, 0))
        durations.add_metric([queue, task], counts.cumulative(), counts.duration_ms / 1000)
    yield from counters.values()
    yield durations


@dataclass
class TaskCounts:
    """One task's counts on one queue: by event, by duration bucket (each
    bucket's own, not cumulative), and the sum of durations."""

    events: dict[str, int] = dataclass_field(default_factory=dict)
    buckets: dict[str, int] = dataclass_field(default_factory=dict)
    duration_ms: int = 0

    def cumulative(self) -> list[tuple[str, int]]:
        """Every bucket, cumulative (Prometheus's histogram): the same bounds
        on every series, so that summing them by ``le`` adds like to like."""
        bounds = set(ZERO_BUCKETS) | (set(self.buckets) - {"+Inf"})
        running, cumulative = 0, []
        for le in sorted(bounds, key=float):
            running += self.buckets.get(le, 0)
            cumulative.append((le, running))
        cumulative.append(("+Inf", running + self.buckets.get("+Inf", 0)))
        return cumulative


def _by_task(stats: Mapping[str, Mapping[str, int]]) -> dict[tuple[str, str], TaskCounts]:
    """Each queue's counts by field (tarefa.stats), per (queue, task)."""
    found: dict[tuple[str, str], TaskCounts] = defaultdict(TaskCounts)
    for queue, fields in stats.items():
        for raw, n in fields.items():
            name, task = split_field(raw)
            if not task:
                continue  # lost|: counted per queue, apart
            counts = found[queue, task]
            if name.startswith("le:"):
                counts.buckets[name[3:]] = n
            elif name == DURATION_SUM_MS:
                counts.duration_ms = n
            else:
                counts.events[name] = n
    return found


def task_seeds(app: App, queues: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """(queue, task) for each of the app's tasks, on its own queue (only
    those among ``queues``, when given)."""
    wanted = None if queues is None else set(queues)
    return [
        (task.options.queue, name)
        for name, task in app.tasks.items()
        if wanted is None or task.options.queue in wanted
    ]


class QueueCollector(Collector):
    """Everything about the queues, workers and Redis of one App."""

    def __init__(self, app: App):
        self.app = app

    def collect(self) -> Iterator[Metric]:
        store = self.app.store
        queues = self.app.queues()
        stats = {name: store.stats(name) for name in queues}
        yield from job_metrics(stats, seeds=task_seeds(self.app))
        lost = CounterMetricFamily(
            f"tarefa_jobs_{LOST}",
            "Jobs found gone from Redis before they ended (evicted: see maxmemory-policy)",
            labels=["queue"],
        )
        for name in queues:
            lost.add_metric([name], stats[name].get(field(LOST, ""), 0))
        yield lost
        yield from self.queue_gauges(queues)
        yield from self.worker_gauges(queues)
        yield from self.memory_gauges()

    def queue_gauges(self, queues: list[str]) -> Iterator[Metric]:
        store = self.app.store
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
        yield from (jobs, oldest, paused)

    def worker_gauges(self, queues: list[str]) -> Iterator[Metric]:
        workers = manage.workers(self.app)
        alive = GaugeMetricFamily("tarefa_workers", "Live workers")
        alive.add_metric([], len(workers))
        serving = Counter(q for w in workers for q in w["queues"])
        per_queue = GaugeMetricFamily(
            "tarefa_queue_workers", "Live workers serving the queue", labels=["queue"]
        )
        for name in sorted(set(queues) | set(serving)):
            per_queue.add_metric([name], serving[name])
        running = GaugeMetricFamily(
            "tarefa_worker_running_jobs",
            "Jobs a live worker runs, as of its last heartbeat",
            labels=["worker", "host"],
        )
        for w in workers:
            running.add_metric([w["id"], w["host"]], w["running"])
        yield from (alive, per_queue, running)

    def memory_gauges(self) -> Iterator[Metric]:
        """Redis's memory in use and its maxmemory, where Redis tells them."""
        memory = self.app.store.memory()
        for name, value, about in [
            ("used", memory.used, "Memory Redis uses (used_memory)"),
            ("max", memory.maxmemory, "Redis's maxmemory; 0: no limit"),
        ]:
            if value is not None:
                yield GaugeMetricFamily(f"tarefa_redis_memory_{name}_bytes", about, value=value)


class WorkerCollector(Collector):
    """One worker's own jobs since it started (read from another thread),
    under names of their own: the dashboard counts the same jobs queue-wide."""

    def __init__(self, worker: Worker):
        self.worker = worker
        self.host = socket.gethostname()

    def collect(self) -> Iterator[Metric]:
        w = self.worker
        yield from job_metrics(
            w.stats.snapshot(),
            seeds=task_seeds(w.app, w.queues),
            prefix="tarefa_worker_",
            events=WORKER_EVENTS,
            whose="by this worker, per queue and task",
        )
        active = GaugeMetricFamily(
            "tarefa_worker_active_jobs",
            "Jobs this worker runs now, per queue it serves",
            labels=["worker", "host", "queue"],
        )
        per_queue = Counter(running.queue for running in list(w.running.values()))
        for queue in w.queues:
            active.add_metric([w.id, self.host, queue], per_queue[queue])
        slots = GaugeMetricFamily(
            "tarefa_worker_concurrency", "Jobs this worker runs at most at once",
            labels=["worker", "host"],
        )  # fmt: skip
        slots.add_metric([w.id, self.host], w.concurrency)
        yield from (active, slots)


def metrics_registry(app: App) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector(app))
    return registry


def worker_registry(worker: Worker) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WorkerCollector(worker))
    ProcessCollector(registry=registry)  # process_*: its CPU, memory, open files
    return registry


def render(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The registry in Prometheus's text format, and its content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST


def serve_worker_metrics(
    worker: Worker, host: str, port: int, allowed_hosts: Iterable[str] = ()
) -> WSGIServer:
    """Serve the worker's metrics at http://host:port/metrics from a daemon
    thread; returns the server (``.shutdown()`` stops it). It answers only
    requests naming localhost, 127.0.0.1, [::1], ``host`` or one of
    ``allowed_hosts`` (tarefa.hosts: no page elsewhere reads them)."""
    hosts = AllowedHosts([host, *allowed_hosts], option="--metrics-allowed-host")
    registry = worker_registry(worker)
    server, _ = start_http_server(port, host, registry)
    # Its thread serves already: only a request sent within microseconds of
    # the port opening could come before the check is in place.
    server.set_app(_only_for(hosts, _with_health(worker, make_wsgi_app(registry))))
    return server


def check_metrics_port(host: str, port: int, allowed_hosts: Iterable[str] = ()) -> None:
    """Raise what ``serve_worker_metrics`` would, serving nothing (``tarefa
    worker -p N`` checks its ports before it forks): ValueError for an allowed
    host that is no host name, OSError for a port it cannot bind."""
    AllowedHosts([host, *allowed_hosts], option="--metrics-allowed-host")
    info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, address = info[0]  # the one prometheus_client's server binds
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
        probe.bind(address)


def _with_health(worker: Worker, metrics: WSGIApplication) -> WSGIApplication:
    """``metrics``, and ``/health``: the worker's health as JSON, 200 or 503
    (a liveness probe's path: Worker.health)."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/health":
            return metrics(environ, start_response)
        healthy, seen = worker.health()
        status = "200 OK" if healthy else "503 Service Unavailable"
        start_response(status, [("Content-Type", "application/json")])
        return [orjson.dumps(seen)]

    return app


def _only_for(hosts: AllowedHosts, wsgi_app: WSGIApplication) -> WSGIApplication:
    """``wsgi_app`` for requests whose Host header ``hosts`` allows; 400 for others."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        header = environ.get("HTTP_HOST")
        if hosts.allows(header):
            return wsgi_app(environ, start_response)
        start_response("400 Bad Request", [("Content-Type", "text/plain; charset=utf-8")])
        return [hosts.refusal(header).encode()]

    return app
