"""The dashboard and REST API off localhost: ``tarefa dashboard`` refuses to
serve another address without credentials, and with them refuses every
unauthenticated request, changes above all, over real HTTP.

(tests/web/test_api.py covers the rest in-process: reads need the
credentials, both kinds are accepted, /health stays open, cross-site changes
are refused, check_bind's rule.)"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys

import httpx
import pytest

from tarefa import JobState

from ..conftest import PYTHONPATH, ROOT
from ..redis_server import free_port
from ..tasks import add
from ..waits import PATIENCE
from .conftest import eventually, tarefa

HOST = "127.0.0.2"  # this machine, but not an address the dashboard trusts as local
TOKEN = "t0ken-of-the-operator"


@pytest.fixture
def dashboard(redis_url, tmp_path):
    """Start ``tarefa dashboard tests.tasks:app`` on HOST with ``env``; stopped after."""
    started = []

    def start(*args: str, env: dict) -> tuple[subprocess.Popen, str]:
        port = free_port()
        log = open(tmp_path / f"dashboard{len(started)}.log", "w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "tarefa", "dashboard", "tests.tasks:app",
             "--host", HOST, "--port", str(port), *args],
            cwd=ROOT, env=dict(os.environ, PYTHONPATH=PYTHONPATH, **env),
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        started.append(proc)
        base = f"http://{HOST}:{port}"

        def answers():
            try:
                # 503: listening, and a queue has ready jobs with no worker.
                return httpx.get(f"{base}/api/v1/health", timeout=1).status_code in (200, 503)
            except httpx.TransportError:  # not listening yet
                assert proc.poll() is None, (tmp_path / "dashboard0.log").read_text()
                return False

        eventually(answers, what="the dashboard to listen")
        return proc, base

    yield start
    for proc in started:
        proc.send_signal(signal.SIGTERM)
        proc.wait(PATIENCE)


def test_serving_beyond_localhost_without_credentials_is_refused(redis_url):
    out = tarefa("dashboard", "tests.tasks:app", "--host", HOST, env={"TAREFA_URL": redis_url})
    assert out.returncode == 2 and "without credentials" in out.stderr


def test_beyond_localhost_every_unauthenticated_request_is_refused(app, dashboard):
    job = add.with_options(delay=600, job_id="kept").enqueue(1, 2)
    _, base = dashboard(env={"TAREFA_DASHBOARD_TOKEN": TOKEN})
    queue = "/api/v1/queues/default"
    changes = [
        ("POST", "/api/v1/jobs/kept/cancel"), ("DELETE", "/api/v1/jobs/kept"),
        ("POST", f"{queue}/pause"), ("POST", f"{queue}/purge"), ("POST", f"{queue}/retry-failed"),
        ("DELETE", f"{queue}/failed"), ("POST", "/api/v1/tasks/tests.tasks:add/jobs"),
    ]  # fmt: skip
    reads = [("GET", "/"), ("GET", "/api/v1/queues"), ("GET", "/api/v1/jobs/kept"),
             ("GET", "/metrics"), ("GET", "/openapi.json")]  # fmt: skip
    basic = "Basic " + base64.b64encode(f"ops:{TOKEN}".encode()).decode()  # none is set
    wrong = [
        {},
        {"authorization": "Bearer nope"},
        {"authorization": TOKEN},
        {"authorization": basic},
    ]
    with httpx.Client(base_url=base, timeout=10) as client:
        for headers in wrong:
            for method, path in changes + reads:
                response = client.request(method, path, headers=headers, json={"args": {}})
                assert response.status_code == 401, (method, path, headers)
                assert response.headers["www-authenticate"] == "Bearer"
        assert job.status is JobState.SCHEDULED and not app.queue("default").paused
        assert app.queue("default").counts()["scheduled"] == 1  # nothing changed

        right = {"authorization": f"Bearer {TOKEN}"}
        assert client.get("/api/v1/queues", headers=right).status_code == 200
        assert client.post("/api/v1/jobs/kept/cancel", headers=right).status_code == 200
        assert job.status is JobState.CANCELLED


def test_basic_auth_beyond_localhost(app, dashboard):
    add.enqueue(1, 2)
    _, base = dashboard(env={"TAREFA_DASHBOARD_USER": "ops", "TAREFA_DASHBOARD_PASSWORD": "pw"})
    with httpx.Client(base_url=base, timeout=10) as client:
        refused = client.post("/api/v1/queues/default/pause", auth=("ops", "wrong"))
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Basic")
        assert not app.queue("default").paused
        assert client.post("/api/v1/queues/default/pause", auth=("ops", "pw")).status_code == 200
        assert app.queue("default").paused
