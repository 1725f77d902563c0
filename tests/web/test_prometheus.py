"""The Grafana dashboard and the alerting rules against a real Prometheus
that scrapes a real dashboard and a real worker's metrics port, as docs/metrics.md
says to: every query of contrib/grafana/tarefa.json shows the jobs that ran,
each counted once, and each rule of contrib/prometheus/alerts.yml fires
where it should and only there.

Counters are exact here, not approximately right: every task's counters are
exported from 0 before its first job, so increase() over a range that starts
before the run does not extrapolate backwards, and the queries are evaluated
at the time of the target's last scrape, so it does not extrapolate forwards
either: increase() is the count, and rate() times the range too.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from urllib.parse import urlsplit

import pytest

from tarefa import manage
from tarefa.web.server import create_app

from .. import prometheus_server
from ..conftest import ROOT
from ..prometheus_server import PrometheusServer, free_port
from ..tasks import add, always_fails, flaky
from ..waits import PATIENCE, wait_until

pytestmark = pytest.mark.skipif(
    prometheus_server.binary() is None,
    reason="no prometheus binary (Debian: apt-get install prometheus; .ci/run installs it)",
)

DASHBOARD = ROOT / "contrib" / "grafana" / "tarefa.json"
ALERTS = ROOT / "contrib" / "prometheus" / "alerts.yml"
ADD, FLAKY, FAILS = "tests.tasks:add", "tests.tasks:flaky", "tests.tasks:always_fails"
WORKERS_JOB = "tarefa-workers"  # the scrape job of the workers' metrics ports
# The rules as shipped, but quick: what each test copy changes (each must be there).
QUICK = [(r"for: \d+m", "for: 1s"), (r"tarefa_queue_oldest_ready_age_seconds\) > 300", None)]
# Panels a worker's port cannot fill: they are about Redis (queue-wide gauges).
DASHBOARD_ONLY = {
    "Ready jobs", "Failed jobs (dead letter)", "Failed jobs (dead letter) (timeseries)",
    "Oldest ready job", "Queue depth",
    "Oldest ready job age", "Jobs lost (gone from Redis: evicted)", "Paused queues",
    "Redis memory",
}  # fmt: skip


def panels() -> dict[str, list[str]]:
    """Each panel's title (and its type, for a title that comes again) -> its queries."""
    found = {}
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        if panel["type"] != "row":
            title = panel["title"]
            title = f"{title} ({panel['type']})" if title in found else title
            found[title] = [t["expr"] for t in panel["targets"]]
    return found


def grafana(expr: str, range_ms: int) -> str:
    """A query as Grafana sends it: all queues, and ranges that cover the run."""
    expr = expr.replace("$queue", ".*")
    return expr.replace("$__rate_interval", f"{range_ms}ms").replace("$__range", f"{range_ms}ms")


def workers_only(expr: str) -> str:
    """The query as a Prometheus that scrapes only the workers would answer it."""
    matcher = f'job="{WORKERS_JOB}"'
    expr = re.sub(r"\b((?:tarefa|process)_[a-z_]+)\{", rf"\1{{{matcher}, ", expr)
    return re.sub(r"\b((?:tarefa|process)_[a-z_]+)\b(?![{\w])", rf"\1{{{matcher}}}", expr)


def quick_rules(tmp_path, oldest_ready_after: int) -> list:
    text = ALERTS.read_text()
    for pattern, _ in QUICK:
        assert re.search(pattern, text), f"{pattern} is gone from {ALERTS}: update QUICK"
    text = re.sub(QUICK[0][0], QUICK[0][1], text)
    text = text.replace(
        "tarefa_queue_oldest_ready_age_seconds) > 300",
        f"tarefa_queue_oldest_ready_age_seconds) > {oldest_ready_after}",
    )
    path = tmp_path / "alerts.yml"
    path.write_text(text)
    return [path]


@pytest.fixture
def scraped(app, r, serve, spawn_worker, tmp_path):
    """A worker (with its metrics port) and a dashboard, both scraped by a
    real Prometheus with the shipped rules made quick; returns a starter."""
    started = []

    def start(oldest_ready_after: int = 1) -> tuple[PrometheusServer, dict]:
        port = free_port()
        worker = spawn_worker("--metrics-port", str(port), "--lease", "2", "-c", "4")
        wait_until(lambda: manage.workers(app), "the worker's registration")
        dashboard = urlsplit(serve(create_app(app))).netloc
        targets = {"tarefa": dashboard, WORKERS_JOB: f"127.0.0.1:{port}"}
        prom = PrometheusServer(
            tmp_path / "prometheus", targets, quick_rules(tmp_path, oldest_ready_after)
        )
        started.append(prom.start())
        # Every target scraped, every task's counters seen at 0 from both.
        wait_until(lambda: prom.value("sum(up)") == 2, "both targets up")
        for name in ("tarefa_jobs_enqueued_total", "tarefa_worker_jobs_completed_total"):
            wait_until(
                lambda name=name: prom.value(f'{name}{{task="{FAILS}",queue="default"}}') == 0,
                f"a scrape of {name} at 0",
            )
        return prom, {"worker": worker, "id": manage.workers(app)[0]["id"]}

    yield start
    for prom in started:
        prom.stop()


def wait_for_scrapes(prom: PrometheusServer, expected: dict[str, float]) -> None:
    """Until Prometheus holds the final figures from both endpoints."""

    def seen():
        return {expr: prom.value(expr) for expr in expected}

    wait_until(lambda: seen() == expected, f"Prometheus to scrape {expected} (last: {seen()})")


def run_known_jobs(app, r):
    """6 jobs that complete, 2 that fail once and then complete, 2 that fail
    for good after 2 retries; 3 waiting on a queue no worker serves."""
    jobs = [add.enqueue(i, 1) for i in range(6)]
    jobs += [flaky.with_options(backoff=0.01).enqueue(f"p{i}", 1) for i in range(2)]
    failing = [always_fails.with_options(backoff=0.01).enqueue("boom") for _ in range(2)]
    for job in jobs:
        job.result(timeout=PATIENCE)
    for job in failing:
        wait_until(lambda job=job: job.status == "failed", "a job to fail for good")


FINAL = {  # the raw totals, from each endpoint
    "sum(tarefa_jobs_enqueued_total)": 13, "sum(tarefa_jobs_started_total)": 16,
    "sum(tarefa_jobs_completed_total)": 8, "sum(tarefa_jobs_failed_total)": 2,
    "sum(tarefa_jobs_retried_total)": 6, "sum(tarefa_job_duration_seconds_count)": 16,
    "sum(tarefa_worker_jobs_started_total)": 16, "sum(tarefa_worker_jobs_completed_total)": 8,
    "sum(tarefa_worker_jobs_failed_total)": 2, "sum(tarefa_worker_jobs_retried_total)": 6,
    "sum(tarefa_worker_job_duration_seconds_count)": 16,
    'sum(tarefa_queue_jobs{state="failed"})': 2,
}  # fmt: skip


def by(result: dict[tuple, float], label: str) -> dict[str, float]:
    return {dict(labels)[label]: value for labels, value in result.items()}


def per_task(result: dict[tuple, float]) -> dict[str, int]:
    """The default queue's figures per task, those not 0."""
    return {
        dict(labels)["task"]: round(v)
        for labels, v in result.items()
        if v and dict(labels)["queue"] == "default"
    }


def counts(result: dict[tuple, float], range_ms: int, label: str | None = None, rate=True):
    """Rates over the range as the number of events they stand for (those
    that are not 0, by ``label``)."""
    factor = range_ms / 1000 if rate else 1
    if label is None:
        (value,) = result.values()
        return pytest.approx(value * factor, abs=1e-6)
    return {key: pytest.approx(v * factor, abs=1e-6) for key, v in by(result, label).items() if v}


def evaluated(prom: PrometheusServer, job: str, begun: float, view=lambda e: e) -> tuple:
    """Every panel's queries, at the time of the ``job`` target's last scrape
    over a range from ``begun``: panel title -> results; and the range."""
    at = wait_until(lambda: prom.settled(job), f"a time when every scrape had succeeded ({job})")
    range_ms = round((at - begun) * 1000)
    return {
        title: [prom.query(view(grafana(expr, range_ms)), at=at) for expr in exprs]
        for title, exprs in panels().items()
    }, range_ms


def test_every_panel_counts_each_job_once(app, r, scraped):
    add.with_options(queue="unserved").enqueue_many([(1, 1)] * 3)  # before the run's range
    begun = time.time()
    prom, worker = scraped()
    run_known_jobs(app, r)
    wait_for_scrapes(prom, FINAL)
    stats = app.store.stats("default")
    run, range_ms = evaluated(prom, "tarefa", begun)

    assert counts(run["Completed / s"][0], range_ms) == 8  # 16 when both counted
    assert counts(run["Jobs completed per second"][0], range_ms, "queue") == {
        "default": 8
    }  # fmt: skip
    assert counts(run["Jobs failed per second"][0], range_ms, "queue")["default"] == 2
    assert counts(run["Jobs retried per second"][0], range_ms, "queue")["default"] == 6
    enqueued, started = run["Jobs enqueued and started per second"]
    assert counts(enqueued, range_ms, "queue") == {"default": 10}
    assert counts(started, range_ms, "queue") == {"default": 16}
    (ratio,) = run["Failure ratio (time range)"][0].values()
    assert ratio == pytest.approx(2 / 10, abs=0.01)
    assert by(run["Failure ratio"][0], "queue")["default"] == pytest.approx(0.2, abs=0.01)
    # Durations: one observation per attempt; the mean as the totals give it.
    mean = (
        stats[f"duration_ms|{ADD}"] + stats[f"duration_ms|{FLAKY}"] + stats[f"duration_ms|{FAILS}"]
    )
    mean_seconds = by(run["Mean job duration"][0], "queue")["default"]
    assert mean_seconds == pytest.approx(mean / 1000 / 16, rel=0.01, abs=1e-9)
    for quantile in run["Job duration p50 / p95 / p99"]:
        assert 0 < by(quantile, "queue")["default"] <= 5
    by_task, failed, *quantiles = run["Duration by task (time range)"]
    attempts = per_task(by_task)
    assert attempts == {ADD: 6, FLAKY: 4, FAILS: 6}
    assert per_task(failed) == {FAILS: 2}
    for quantile in quantiles:
        figures = {
            dict(labels)["task"]: v
            for labels, v in quantile.items()
            if dict(labels)["queue"] == "default" and dict(labels)["task"] in attempts
        }
        assert len(figures) == 3 and all(0 < v <= 5 for v in figures.values()), figures
    # Gauges: the last scrape.
    assert counts(run["Live workers"][0], range_ms, rate=False) == 1
    assert counts(run["Ready jobs"][0], range_ms, rate=False) == 3
    assert counts(run["Failed jobs (dead letter)"][0], range_ms, rate=False) == 2
    assert counts(run["Failed jobs (dead letter) (timeseries)"][0], range_ms, "queue", False) == {
        "default": 2
    }  # fmt: skip
    assert counts(run["Live workers (timeseries)"][0], range_ms, rate=False) == 1
    assert 0 < next(iter(run["Oldest ready job"][0].values())) < time.time() - begun + 1
    depth = {(dict(k)["queue"], dict(k)["state"]): v for k, v in run["Queue depth"][0].items()}
    assert depth[("unserved", "queued")] == 3 and depth[("default", "queued")] == 0
    assert by(run["Oldest ready job age"][0], "queue")["default"] == 0
    assert set(by(run["Jobs lost (gone from Redis: evicted)"][0], "queue").values()) == {0}
    assert set(by(run["Paused queues"][0], "queue").values()) == {0}
    assert by(run["Running jobs per worker"][0], "worker") == {worker["id"]: 0}
    assert by(run["Live workers per queue"][0], "queue") == {"default": 1, "unserved": 0}
    assert len(run["Worker CPU"][0]) == 1 and len(run["Worker memory (RSS)"][0]) == 1
    assert next(iter(run["Worker memory (RSS)"][0].values())) > 0
    used, limit = run["Redis memory"]
    assert next(iter(used.values())) > 0 and limit == {}  # no maxmemory: no line
    # The Queue menu offers every queue.
    queues = prom.api("label/queue/values", **{"match[]": '{__name__="tarefa_queue_jobs"}'})
    assert set(queues) == {"default", "unserved"}

    # Workers alone: every panel a worker can fill shows the same jobs.
    alone, range_ms = evaluated(prom, WORKERS_JOB, begun, workers_only)
    empty = {title for title, results in alone.items() if not any(results)}
    assert empty == DASHBOARD_ONLY
    assert counts(alone["Completed / s"][0], range_ms) == 8
    assert counts(alone["Jobs failed per second"][0], range_ms, "queue") == {"default": 2}
    assert counts(alone["Jobs retried per second"][0], range_ms, "queue") == {"default": 6}
    assert counts(alone["Jobs enqueued and started per second"][1], range_ms, "queue") == {
        "default": 16
    }  # fmt: skip
    (ratio,) = alone["Failure ratio (time range)"][0].values()
    assert ratio == pytest.approx(0.2, abs=0.01)
    assert counts(alone["Live workers"][0], range_ms, rate=False) == 1
    assert by(alone["Live workers per queue"][0], "queue") == {"default": 1}
    assert by(alone["Running jobs per worker"][0], "worker") == {worker["id"]: 0}
    attempts = per_task(alone["Duration by task (time range)"][0])
    assert attempts == {ADD: 6, FLAKY: 4, FAILS: 6}
    match = {"match[]": f'{{__name__="tarefa_worker_active_jobs",job="{WORKERS_JOB}"}}'}
    assert prom.api("label/queue/values", **match) == ["default"]


def firing(prom: PrometheusServer) -> dict[str, set[str]]:
    """Each rule's state; every rule must evaluate without error."""
    rules = prom.rules()
    assert {name: rule["health"] for name, rule in rules.items()} == dict.fromkeys(rules, "ok"), (
        rules
    )
    return {state: {n for n, rule in rules.items() if rule["state"] == state}
            for state in ("firing", "pending", "inactive")}  # fmt: skip


def test_the_alerts_fire_when_they_should(app, r, scraped):
    add.with_options(queue="unserved").enqueue_many([(1, 1)] * 3)
    prom, _ = scraped(oldest_ready_after=1)
    run_known_jobs(app, r)
    wait_for_scrapes(prom, FINAL)
    original = r.config_get("maxmemory")["maxmemory"]
    try:
        r.config_set("maxmemory", int(r.info("memory")["used_memory"] / 0.95))
        every = set(prom.rules())
        wait_until(lambda: firing(prom)["firing"] == every, f"every rule to fire: {every}")
    finally:
        r.config_set("maxmemory", original)
    alerts = prom.api("alerts")["alerts"]
    where = {(a["labels"]["alertname"], a["labels"].get("queue")) for a in alerts}
    assert where == {
        ("TarefaQueueUnserved", "unserved"), ("TarefaOldestReadyJobTooOld", "unserved"),
        ("TarefaFailureRatioHigh", "default"), ("TarefaDeadLettersGrowing", "default"),
        ("TarefaRedisMemoryNearMax", None),
    }  # fmt: skip


def test_a_healthy_setup_fires_none(app, r, scraped):
    prom, _ = scraped(oldest_ready_after=1)
    for job in [add.enqueue(i, 1) for i in range(5)]:
        job.result(timeout=PATIENCE)
    wait_for_scrapes(
        prom, {"sum(tarefa_jobs_completed_total)": 5, "sum(tarefa_worker_jobs_completed_total)": 5}
    )
    # Two evaluations of every rule over the final figures: any that held
    # would be pending by now (its for: is 1 s), or firing.
    first = prom.last_evaluation()
    wait_until(lambda: prom.last_evaluation() != first, "a rule evaluation")
    second = prom.last_evaluation()
    wait_until(lambda: prom.last_evaluation() != second, "another rule evaluation")
    states = firing(prom)
    assert states["firing"] == states["pending"] == set()
    assert len(states["inactive"]) == 5


@pytest.mark.skipif(not prometheus_server.promtool(), reason="no promtool (Debian's prometheus)")
def test_promtool_accepts_the_rules():
    out = subprocess.run(
        [prometheus_server.promtool(), "check", "rules", str(ALERTS)],
        capture_output=True, text=True, timeout=PATIENCE,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 5 rules found" in out.stdout
