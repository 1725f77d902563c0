"""DNS rebinding: the dashboard, the REST API and a worker's metrics port
answer only requests naming this machine (localhost, 127.0.0.1, [::1]), the
bound address or an allowed name, reads and changes alike."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from tarefa.hosts import AllowedHosts, host_of
from tarefa.web.server import create_app

from ..conftest import PYTHONPATH, ROOT
from ..redis_server import free_port
from ..tasks import add
from ..waits import PATIENCE, wait_until

API = "/api/v1"
# Every kind of route: the page, its files, the API's reads and changes, the
# OpenAPI document, the metrics and the health check.
READS = ["/", "/static/app.js", "/openapi.json", "/docs", "/metrics", f"{API}/health",
         f"{API}/queues", f"{API}/jobs/j"]  # fmt: skip
REFUSED = ["evil.example", "evil.example:8000", "localhost.evil.example", "127.0.0.1.nip.io",
           "evil.example@localhost", "localhost/x", "[::2]:8000", "[::1", "localhost:http",
           "0.0.0.0:8000", ""]  # fmt: skip
ACCEPTED = ["localhost", "localhost:8000", "LocalHost:1", "127.0.0.1", "127.0.0.1:8000",
            "[::1]", "[::1]:8000"]  # fmt: skip


@pytest.fixture
def client(app):
    with TestClient(create_app(app), base_url="http://localhost") as client:
        yield client


@pytest.mark.parametrize("host", REFUSED)
def test_a_request_naming_another_host_is_refused(client, app, host):
    add.with_options(job_id="j").enqueue(1, 1)
    for path in READS:
        refused = client.get(path, headers={"host": host})
        assert refused.status_code == 400, (path, refused.text)
        assert "is not a name this server answers to" in refused.json()["detail"]
    purge = client.post(f"{API}/queues/default/purge", headers={"host": host})
    assert purge.status_code == 400
    assert app.queue("default").counts()["queued"] == 1  # not purged


@pytest.mark.parametrize("host", ACCEPTED)
def test_the_local_names_are_answered(client, app, host):
    add.with_options(job_id="j", delay=600).enqueue(1, 1)  # scheduled: /health stays 200
    for path in READS:
        assert client.get(path, headers={"host": host}).status_code == 200, path


def test_an_application_mounting_it_names_its_hosts(app):
    web = create_app(app, allowed_hosts=["ops.example.com", "10.0.0.7", "fd00::7"])
    with TestClient(web, base_url="http://localhost") as client:
        for host in ("ops.example.com", "OPS.example.com:443", "10.0.0.7:8000", "[fd00::7]"):
            assert client.get(f"{API}/queues", headers={"host": host}).status_code == 200, host
        for host in ("evil.example", "x.ops.example.com", "10.0.0.8"):
            assert client.get(f"{API}/queues", headers={"host": host}).status_code == 400, host
    anything = create_app(app, allowed_hosts=["*"])  # unsafe: for a server that checks it itself
    with TestClient(anything, base_url="http://evil.example") as client:
        assert client.get(f"{API}/queues").status_code == 200


def test_allowed_names_are_host_names():
    assert host_of("[::1]:8000") == "::1" and host_of("Tarefa.Internal") == "tarefa.internal"
    assert host_of(None) is None and host_of("a b/c") is None
    for name in ("host:8000", "*.example.com", "a/b", ""):
        with pytest.raises(ValueError):
            AllowedHosts([name])
    assert AllowedHosts(["[::1]"]).names == AllowedHosts(["::1"]).names


# -- the real servers -------------------------------------------------------------


def start(log: Path, *args: str) -> subprocess.Popen:
    """``tarefa ARGS...`` with its output in ``log``."""
    env = dict(os.environ, PYTHONPATH=PYTHONPATH)
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, "-m", "tarefa", *args], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip


def wait_until_served(proc: subprocess.Popen, url: str, log: Path) -> None:
    def answers() -> bool:
        try:
            httpx.get(url, timeout=PATIENCE)
            return True
        except httpx.TransportError:
            assert proc.poll() is None, log.read_text()
            return False

    wait_until(answers, f"an answer at {url}")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(PATIENCE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(PATIENCE)


def test_tarefa_dashboard_answers_its_names_and_allowed_hosts(app, tmp_path):
    add.enqueue_many([(1, 1)] * 3)
    port, log = free_port(), tmp_path / "dashboard.log"
    allowed = ["--allowed-host", "tarefa.internal", "--allowed-host", "ops.example.com"]
    proc = start(log, "dashboard", "tests.tasks:app", "--port", str(port), *allowed)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_served(proc, f"{base}{API}/health", log)
        evil = {"host": f"evil.example:{port}"}
        refused = httpx.get(f"{base}{API}/queues", headers=evil)
        assert refused.status_code == 400 and "--allowed-host" in refused.json()["detail"]
        assert httpx.get(f"{base}/", headers=evil).status_code == 400
        assert httpx.post(f"{base}{API}/queues/default/purge", headers=evil).status_code == 400
        assert app.queue("default").counts()["queued"] == 3  # the purge did not happen

        for host in ("tarefa.internal", f"ops.example.com:{port}", f"localhost:{port}",
                     f"127.0.0.1:{port}"):  # fmt: skip
            answered = httpx.get(f"{base}{API}/queues", headers={"host": host})
            assert answered.status_code == 200, host
            assert answered.json()[0]["counts"]["queued"] == 3
    finally:
        stop(proc)


def test_tarefa_dashboard_refuses_an_allowed_host_that_is_no_name(r):
    out = subprocess.run(
        [sys.executable, "-m", "tarefa", "dashboard", "tests.tasks:app",
         "--allowed-host", "tarefa.internal:8000"],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=PYTHONPATH), capture_output=True, text=True,
        timeout=PATIENCE,
    )  # fmt: skip
    assert out.returncode == 2 and "not a host name (with no port)" in out.stderr


def test_a_worker_metrics_port_answers_its_names_and_allowed_hosts(spawn_worker, app):
    port = free_port()
    spawn_worker("--metrics-port", str(port), "--metrics-allowed-host", "worker-1.internal")
    assert add.enqueue(1, 1).result(timeout=PATIENCE) == 2  # the worker, and so its port, is up
    url = f"http://127.0.0.1:{port}/metrics"
    refused = httpx.get(url, headers={"host": f"evil.example:{port}"}, timeout=PATIENCE)
    assert refused.status_code == 400 and "--metrics-allowed-host" in refused.text
    assert "tarefa_worker_jobs_completed_total" not in refused.text
    for host in (f"worker-1.internal:{port}", f"localhost:{port}", f"127.0.0.1:{port}"):
        answered = httpx.get(url, headers={"host": host}, timeout=PATIENCE)
        assert answered.status_code == 200 and "tarefa_worker_jobs_completed_total" in answered.text
