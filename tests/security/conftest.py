"""Fixtures for the security tests: redis-servers of a test's own, with a
password, ACL users or TLS; and the tasks of tests.tasks, registered by name on
an App of any URL, for producers talking to such a server."""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from tarefa import App

from .. import tasks
from ..conftest import PYTHONPATH, ROOT
from ..redis_server import binary, make_tls_files, tls_supported
from ..waits import PATIENCE, wait_until

PASSWORD = "s3cr3t-Pa55:w/rd@x"  # with characters a URL must escape


@pytest.fixture
def server(private_redis):
    """Start a redis-server with RedisServer's options (password=, users=, tls=)."""
    return private_redis


@pytest.fixture
def tls_files(tmp_path):
    if not tls_supported():
        pytest.skip(f"{binary()} was built without TLS support")
    return make_tls_files(tmp_path / "tls")


def producer(url: str) -> SimpleNamespace:
    """An App on ``url`` with the tasks a ``tests.tasks:app`` worker runs, under
    the same names: what a producer of that app sends."""
    app = App(url)
    made = SimpleNamespace(app=app)
    for task in (tasks.add, tasks.always_fails, tasks.merge, tasks.report_progress):
        options = {"retries": task.options.retries}
        setattr(made, task.fn.__name__, app.task(task.fn, name=task.name, **options))
    return made


def tarefa(*args: str, env: dict | None = None, timeout: float = PATIENCE):
    """Run the ``tarefa`` command line; TAREFA_URL unset unless ``env`` sets it."""
    env = {k: v for k, v in os.environ.items() if k != "TAREFA_URL"} | (env or {})
    env["PYTHONPATH"] = PYTHONPATH
    return subprocess.run(
        [sys.executable, "-m", "tarefa", *args],
        stdin=subprocess.DEVNULL, capture_output=True, text=True,
        env=env, cwd=ROOT, timeout=timeout,
    )  # fmt: skip


def eventually(check, timeout: float = PATIENCE, what: str = "the condition"):
    """Poll ``check()`` until it returns something true, for states Redis or a
    log offers no event for; fail after ``timeout`` seconds."""
    return wait_until(check, what, timeout)


def stop(worker: subprocess.Popen, timeout: float = PATIENCE) -> str:
    """SIGTERM a subprocess worker; its exit code must be 0. Returns its log."""
    worker.terminate()
    code = worker.wait(timeout)
    log = worker.log_path.read_text()
    assert code == 0, log
    return log
