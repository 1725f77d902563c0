"""Counts of jobs (tarefa.stats) as users read them: Prometheus metrics from
the dashboard and from a worker's own port, per-minute history for the
charts, and counts that survive Redis going away."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tarefa import App, manage
from tarefa.store.keys import queue_keys
from tarefa.web.server import create_app
from tarefa.worker import Worker
from tarefa.worker.housekeeping import send_stats

from ..conftest import PYTHONPATH, ROOT
from ..tasks import add, always_fails, blocks_loop, flaky
from ..waits import PATIENCE, wait_for_list, wait_until

API = "/api/v1"
ADD, FLAKY, FAILS = "tests.tasks:add", "tests.tasks:flaky", "tests.tasks:always_fails"


@pytest.fixture
def client(app):
    with TestClient(create_app(app), base_url="http://localhost") as client:
        yield client


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Prometheus text, parsed by prometheus-client: (name, labels) -> value."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def labels(queue: str, task: str, **more: str) -> tuple:
    return tuple(sorted({"queue": queue, "task": task, **more}.items()))


def test_metrics_parse_and_match_the_queues(client, run_worker):
    add.enqueue_many([(1, 1)] * 3)
    always_fails.with_options(queue="mail", retries=0).enqueue("x")
    run_worker(["mail"])
    client.post(f"{API}/queues/mail/pause")
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    assert found[("tarefa_queue_jobs", (("queue", "default"), ("state", "queued")))] == 3
    assert found[("tarefa_queue_jobs", (("queue", "mail"), ("state", "failed")))] == 1
    assert found[("tarefa_queue_paused", (("queue", "mail"),))] == 1
    assert found[("tarefa_queue_paused", (("queue", "default"),))] == 0
    assert found[("tarefa_queue_oldest_ready_age_seconds", (("queue", "default"),))] >= 0
    assert found[("tarefa_workers", ())] == 0


def test_every_task_counts_from_zero(client):
    """Each task of the app is exported at 0 on its queue before its first
    job, so increase() over a range that starts before it counts that job."""
    found = samples(client.get("/metrics").text)
    for event in ("enqueued", "started", "completed", "failed", "retried"):
        assert found[(f"tarefa_jobs_{event}_total", labels("default", FAILS))] == 0
    assert found[("tarefa_job_duration_seconds_count", labels("default", FAILS))] == 0
    bucket = labels("default", FAILS, le="+Inf")
    assert found[("tarefa_job_duration_seconds_bucket", bucket)] == 0


def test_workers_per_queue_and_redis_memory(client, app, r):
    """The gauges behind the alerts: live workers per queue (0 for a queue
    with none) and Redis's memory against its maxmemory."""
    add.enqueue(1, 1)
    add.with_options(queue="mail").enqueue(1, 1)
    worker = Worker(app, ["mail", "reports"])
    thread = threading.Thread(target=asyncio.run, args=(worker.run(),), name="w (run)")
    thread.start()
    try:
        wait_until(lambda: manage.workers(app), "the worker's registration")
        found = samples(client.get("/metrics").text)
    finally:
        worker.stop()
        thread.join(PATIENCE)
    per_queue = {
        dict(lbl)["queue"]: v for (name, lbl), v in found.items() if name == "tarefa_queue_workers"
    }
    assert per_queue == {"default": 0, "mail": 1, "reports": 1}
    assert found[("tarefa_workers", ())] == 1
    assert found[("tarefa_redis_memory_used_bytes", ())] == pytest.approx(
        r.info("memory")["used_memory"], rel=0.5
    )
    assert found[("tarefa_redis_memory_max_bytes", ())] == int(
        r.config_get("maxmemory")["maxmemory"]
    )


def test_counters_per_queue_and_task(client, run_worker):
    add.enqueue_many([(1, 1)] * 3)
    add.with_options(job_id="once").enqueue(1, 2)
    add.with_options(job_id="once").enqueue(1, 2)  # de-duplicated: not a new job
    flaky.with_options(retries=2, backoff=0.01).enqueue("k", 1)  # fails once, then completes
    always_fails.with_options(queue="mail", retries=1, backoff=0.01).enqueue("x")
    run_worker(["default", "mail"])
    found = samples(client.get("/metrics").text)
    expected = {  # a counter that has not counted yet is there, at 0
        ("enqueued", "default", ADD): 4, ("started", "default", ADD): 4,
        ("completed", "default", ADD): 4, ("failed", "default", ADD): 0,
        ("retried", "default", ADD): 0,
        ("enqueued", "default", FLAKY): 1, ("started", "default", FLAKY): 2,
        ("retried", "default", FLAKY): 1, ("completed", "default", FLAKY): 1,
        ("enqueued", "mail", FAILS): 1, ("started", "mail", FAILS): 2,
        ("retried", "mail", FAILS): 1, ("failed", "mail", FAILS): 1,
    }  # fmt: skip
    got = {
        (event, queue, task): found[(f"tarefa_jobs_{event}_total", labels(queue, task))]
        for event, queue, task in expected
    }
    assert got == expected
    # The duration histogram: one observation per attempt, cumulative buckets.
    assert found[("tarefa_job_duration_seconds_count", labels("default", FLAKY))] == 2
    assert found[("tarefa_job_duration_seconds_count", labels("default", ADD))] == 4
    buckets = sorted(
        (float(dict(lbl)["le"]), v)
        for (name, lbl), v in found.items()
        if name == "tarefa_job_duration_seconds_bucket" and dict(lbl)["task"] == ADD
    )
    assert buckets[-1] == (float("inf"), 4)
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:], strict=False))
    assert 0 <= found[("tarefa_job_duration_seconds_sum", labels("default", ADD))] < 10
    # The same totals in the queue's JSON, summed over its tasks.
    totals = client.get(f"{API}/queues/default").json()["totals"]
    assert totals == {
        "enqueued": 5, "started": 6, "completed": 5, "failed": 0, "retried": 1, "lost": 0
    }  # fmt: skip


def test_jobs_found_gone_are_counted_lost_per_queue(client, app, run_worker, r):
    jobs = add.enqueue_many([(1, 1)] * 3)
    r.delete(f"tarefa:{{default}}:job:{jobs[0].id}")  # as a Redis that evicts keys would
    run_worker()
    found = samples(client.get("/metrics").text)
    assert found[("tarefa_jobs_lost_total", (("queue", "default"),))] == 1
    assert found[("tarefa_jobs_completed_total", labels("default", ADD))] == 2
    assert manage.totals(app, "default")["lost"] == 1


def test_purge_keeps_the_counts(client, app, run_worker):
    add.enqueue_many([(1, 1)] * 2)
    run_worker()
    app.queue("default").purge()
    assert manage.totals(app, "default")["completed"] == 2


def test_history_per_minute(client, app, r):
    """Copies of the totals a minute apart become jobs per minute; a gap of
    several minutes is spread over them; totals that went back (Redis lost
    them) count from zero."""
    add.enqueue(1, 1)  # the queue exists
    now = app.store.clock_ms()
    minute = 60_000
    history = queue_keys("default").history
    r.delete(history)
    copies = [  # (minutes ago, enqueued, started, completed, failed, retried)
        (6, 10, 10, 10, 0, 0),
        (5, 16, 16, 14, 1, 1),  # minute -6: 6 enqueued, 4 completed, 1 failed, 1 retried
        (2, 22, 22, 20, 1, 1),  # minutes -5 to -3: 6 completed, 2 a minute
        (1, 3, 3, 3, 0, 0),  # the totals were reset: minute -2 counts 3 from zero
    ]
    for ago, *counts in copies:
        r.lpush(history, " ".join(map(str, [now - ago * minute, *counts])))
    per_minute = client.get(f"{API}/queues/default/history", params={"minutes": 7}).json()
    assert len(per_minute) == 7 and per_minute[0]["time"] < per_minute[-1]["time"]
    completed = [m["completed"] for m in per_minute]
    # Oldest first: -7 has no copy before it; -1's copy is followed by this minute's.
    assert completed[:5] == [0, 4, 2, 2, 2]
    assert completed[5] == 3
    assert per_minute[1]["failed"] == 1 and per_minute[1]["enqueued"] == 6
    overall = client.get(f"{API}/history", params={"minutes": 7}).json()
    assert [m["completed"] for m in overall][:6] == completed[:6]


def test_history_of_a_real_run(client, run_worker, app, r):
    """Jobs run now show up in the history once their minute is over: the
    last two minutes, whichever side of a minute's turn the run falls on."""
    r.lpush(queue_keys("default").history, f"{app.store.clock_ms() - 60_000} 0 0 0 0 0")
    add.enqueue_many([(1, 1)] * 3)
    run_worker()
    per_minute = manage.history(app, "default", minutes=2)
    assert sum(m["completed"] for m in per_minute) == pytest.approx(3)
    assert sum(m["enqueued"] for m in per_minute) == pytest.approx(3)


@pytest.mark.parametrize("params", [{"minutes": 0}, {"minutes": 100_000}, {"minutes": "x"}])
def test_history_refuses_bad_ranges(client, params):
    add.enqueue(1, 1)
    assert client.get(f"{API}/queues/default/history", params=params).status_code == 422
    assert client.get(f"{API}/history", params=params).status_code == 422


def test_history_of_an_unknown_queue_is_404(client):
    response = client.get(f"{API}/queues/nope/history")
    assert response.status_code == 404 and "nope" in response.json()["detail"]


def test_counts_wait_out_redis_going_away(private_redis):
    """A worker's counts that Redis could not take are sent with the next beat."""
    server = private_redis()
    app = App(url=server.url)
    worker = Worker(app, ["default"])
    worker.stats.started("default", ADD)
    worker.stats.ended("default", ADD, "completed", 0.2)
    server.kill()
    with pytest.raises(Exception):  # noqa: B017 (the client's connection error)
        asyncio.run(send_stats(worker.store, worker.stats, worker.queues))
    server.start()
    worker.stats.started("default", ADD)
    asyncio.run(send_stats(worker.store, worker.stats, worker.queues))
    stats = app.store.stats("default")
    assert stats[f"started|{ADD}"] == 2 and stats[f"completed|{ADD}"] == 1
    assert stats[f"le:0.25|{ADD}"] == 1 and stats[f"duration_ms|{ADD}"] == 200
    app.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_worker_metrics_port(spawn_worker, app, client):
    """A worker's port has its own jobs under names of their own, and none of
    the dashboard's: a Prometheus scraping both counts each job once."""
    port = free_port()
    worker = spawn_worker("--metrics-port", str(port), "-c", "4")
    jobs = [add.enqueue(i, i) for i in range(5)] + [flaky.enqueue("w", 1)]
    assert [job.result(timeout=PATIENCE) for job in jobs] == [0, 2, 4, 6, 8, 2]
    found = samples(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=PATIENCE).text)
    assert found[("tarefa_worker_jobs_completed_total", labels("default", ADD))] == 5
    assert found[("tarefa_worker_jobs_retried_total", labels("default", FLAKY))] == 1
    assert found[("tarefa_worker_job_duration_seconds_count", labels("default", FLAKY))] == 2
    # Its own tasks' counters are there from 0, before their first job.
    assert found[("tarefa_worker_jobs_failed_total", labels("default", FAILS))] == 0
    (worker_id,) = {
        dict(lbl)["worker"] for name, lbl in found if name == "tarefa_worker_concurrency"
    }
    host = socket.gethostname()
    active = (("host", host), ("queue", "default"), ("worker", worker_id))
    assert found[("tarefa_worker_active_jobs", active)] == 0
    assert found[("tarefa_worker_concurrency", (("host", host), ("worker", worker_id)))] == 4
    assert found[("process_resident_memory_bytes", ())] > 0
    assert not any(name.startswith("tarefa_worker_jobs_enqueued") for name, _ in found)
    dashboard = {name for name, _ in samples(client.get("/metrics").text)}
    assert dashboard.isdisjoint(name for name, _ in found)
    assert worker.poll() is None


def test_worker_metrics_port_in_use_is_a_usage_error(r):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "tarefa", "worker", "tests.tasks:app", "--metrics-port",
             str(port)],
            cwd=ROOT, env=dict(os.environ, PYTHONPATH=PYTHONPATH), capture_output=True,
            text=True, timeout=PATIENCE,
        )  # fmt: skip
    assert proc.returncode == 2
    assert f"cannot serve metrics on 127.0.0.1:{port}" in proc.stderr


def test_worker_health_says_when_a_job_holds_its_event_loop(spawn_worker, app, r):
    """``/health`` on the worker's port, a liveness probe's path: 200 while
    its loop answers; 503 once a job's blocking code has held it for over a
    lease (nothing else of the worker runs meanwhile: a restart is the cure)."""
    port = free_port()
    worker = spawn_worker("--metrics-port", str(port), "--lease", "2")

    def health() -> tuple[int, dict]:
        answer = httpx.get(f"http://127.0.0.1:{port}/health", timeout=PATIENCE)
        return answer.status_code, answer.json()

    def beaten() -> dict | None:
        status, seen = health()
        return seen if status == 200 and seen["redis_beat_seconds_ago"] is not None else None

    seen = wait_until(beaten, "a healthy worker's first beat", not_yet=(httpx.TransportError,))
    assert (seen["status"], seen["running"]) == ("ok", 0)
    assert seen["worker"].startswith(socket.gethostname())

    blocks_loop.with_options(timeout=None).enqueue("held", 120)  # time.sleep in an async task
    wait_for_list(r, "test:started", 1)
    status, held = wait_until(lambda: (found := health())[0] == 503 and found, "a 503")
    assert held["status"] == "loop held" and held["loop_held_seconds"] > 2
    assert held["running"] == 1
    worker.kill()
