"""Flow control, cron and the operator's commands on every Redis a user may
run tarefa on (conftest.py): single, cluster (queues on different masters),
and the master a sentinel names. Throttling holds in testing mode too; the
rest needs workers and a Redis."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading

import pytest

from tarefa.worker import Worker

from ..conftest import PYTHONPATH, ROOT
from ..tasks import add, always_fails, record
from ..waits import PATIENCE, wait_until

REDIS = ["redis", "cluster", "sentinel"]


def test_a_throttled_key_makes_one_job_per_window(backend):
    task = add.with_options(queue="pdfs", key="account-7", throttle=60)
    first, *repeats = [task.enqueue(1, i) for i in range(3)]
    assert first.created and not any(job.created for job in repeats)
    assert {job.id for job in repeats} == {first.id}
    backend.run_jobs("pdfs")
    assert first.result(timeout=0) == 1


@pytest.mark.parametrize("backend", REDIS, indirect=True)
def test_a_key_runs_one_job_at_a_time_under_key_concurrency(backend):
    app = backend.app
    app.configure_queue("invoices", key_concurrency=1)
    task = record.with_options(queue="invoices", key="tenant-1")
    try:
        jobs = [task.enqueue(f"k{i}") for i in range(6)]
        backend.run_jobs("invoices")  # (a worker of concurrency 4)
    finally:
        del app.queue_settings["invoices"]
    assert [job.result(timeout=0) for job in jobs] == [f"k{i}" for i in range(6)]
    runs = sorted((job.info().started_at, job.info().finished_at) for job in jobs)
    assert all(run[1] <= later[0] for run, later in zip(runs, runs[1:], strict=False))


@pytest.mark.parametrize("backend", REDIS, indirect=True)
def test_cron_ticks_run_on_every_redis(backend):
    worker = Worker(backend.app, ["cron-test"])
    thread = threading.Thread(target=asyncio.run, args=(worker.run(),))
    thread.start()
    try:
        queue = backend.app.queue("cron-test")
        wait_until(lambda: queue.counts()["completed"] >= 2, "two ticks of every_second")
    finally:
        worker.stop()
        thread.join(PATIENCE)
    assert queue.counts()["failed"] == 0


def tarefa(url: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=PYTHONPATH, TAREFA_URL=url)
    return subprocess.run(
        [sys.executable, "-m", "tarefa", *args], stdin=subprocess.DEVNULL,
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=PATIENCE,
    )  # fmt: skip


@pytest.mark.parametrize("backend", REDIS, indirect=True)
def test_the_operators_commands_see_and_act_on_every_queue(backend):
    url = backend.app.store.url
    for queue in ("emails", "pdfs", "invoices"):  # on three masters of a cluster
        always_fails.with_options(queue=queue, retries=0).enqueue(queue)
    backend.run_jobs("emails", "pdfs", "invoices")
    info = json.loads(tarefa(url, "info", "--json").stdout)
    failed = {q["name"]: q["counts"]["failed"] for q in info["queues"]}
    assert failed == {"emails": 1, "pdfs": 1, "invoices": 1}
    for queue in ("emails", "pdfs", "invoices"):
        out = tarefa(url, "retry", "--all-failed", queue)
        assert out.returncode == 0 and "1 failed job" in out.stdout, out.stderr
        assert tarefa(url, "pause", queue).returncode == 0
        assert backend.app.queue(queue).paused and backend.app.queue(queue).counts()["queued"] == 1
        assert tarefa(url, "purge", queue, "--yes").returncode == 0
        assert sum(backend.app.queue(queue).counts().values()) == 0
