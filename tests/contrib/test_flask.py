"""tarefa.contrib.flask in a real Flask app (tests/flask_project: an app
factory, a route that enqueues, jobs that read ``current_app`` and ``g``),
on a real Redis: jobs run inside the app context by an in-process worker
(threads, the event loop, a process pool) and by ``flask tarefa worker``, a
real subprocess (its process pool and ``-p N`` processes too)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask, g

from tarefa import App, JobState
from tarefa.contrib.flask import ENV, Tarefa, _AppContext
from tarefa.errors import AppImportError
from tarefa.loading import load_app
from tarefa.worker import Worker

from .. import flask_project
from ..conftest import PYTHONPATH, ROOT
from ..flask_project import jobs
from ..waits import PATIENCE

FACTORY = "tests.flask_project:create_app"


@pytest.fixture
def flask_app(r):
    """The Flask app, made by its factory; its tarefa App on the test
    session's freshly flushed Redis."""
    jobs.app._store = None
    flask_project.teardowns.clear()
    yield flask_project.create_app()
    jobs.app.close()


def run_burst(**options) -> None:
    asyncio.run(Worker(jobs.app, ["flask"], burst=True, **options).run())


def flask_cli(
    *args: str, app: str | None = FACTORY, cwd: Path = ROOT, greeting: str = "Olá, {}!"
) -> subprocess.CompletedProcess:
    """``flask --app tests.flask_project:create_app ARGS`` (with no --app if
    ``app`` is None: Flask's own search), a real subprocess, on the test
    session's Redis (TAREFA_URL, inherited)."""
    env = dict(os.environ, PYTHONPATH=PYTHONPATH, FLASK_GREETING=greeting)
    env.pop(ENV, None)
    env.pop("FLASK_APP", None)
    named = ["--app", app] if app is not None else []
    return subprocess.run(
        [sys.executable, "-m", "flask", *named, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=PATIENCE * 2,
    )


def test_a_route_enqueues_and_the_job_runs_in_the_app_context(flask_app):
    answer = flask_app.test_client().post("/signup", data={"name": "Ana"})
    assert answer.status_code == 202
    job = jobs.app.job(answer.json["job"])
    assert job.status == JobState.QUEUED
    run_burst()
    assert job.result(timeout=0) == "Welcome, Ana!"  # current_app's config, in the job


def test_every_job_gets_a_fresh_app_context_where_it_runs(flask_app, monkeypatch):
    """A pool thread, the event loop, a process-pool child: each job pushes an
    app context of its own (g empty at its start), torn down as it ends. The
    child loads the Flask app by tarefa.contrib.flask_app's path, from
    TAREFA_FLASK_APP (as `flask tarefa` sets it)."""
    monkeypatch.setenv(ENV, FACTORY)
    threaded = [jobs.where.enqueue() for _ in range(3)]
    in_loop = [jobs.where_async.enqueue() for _ in range(2)]
    in_child = jobs.where_in_process.enqueue()
    run_burst(concurrency=1, app_path="tarefa.contrib.flask_app:app")
    for job in [*threaded, *in_loop, in_child]:
        seen = job.result(timeout=0)
        assert seen["app"] == "tests.flask_project" and seen["fresh_g"], seen
        assert seen["greeting"] == "Welcome, {}!"
    assert in_child.result(timeout=0)["pid"] != os.getpid()
    assert flask_project.teardowns == ["Welcome, {}!"] * 5  # in this process: 5 jobs


def test_testing_mode_runs_the_job_in_an_app_context_of_its_own(flask_app):
    with jobs.app.testing():
        assert jobs.welcome.enqueue("Bia").result(timeout=0) == "Welcome, Bia!"
        with flask_app.test_request_context("/signup"):
            g.visited = True  # the request's g: not the job's
            assert jobs.where.enqueue().result(timeout=0)["fresh_g"]


def test_init_app_again_or_a_new_app_from_the_factory_keeps_one_scope(flask_app):
    flask_project.tarefa.init_app(flask_app)  # the same app again: nothing changes
    scopes = [s for s in jobs.app.job_scopes if isinstance(s, _AppContext)]
    assert len(scopes) == 1 and scopes[0].flask_app is flask_app
    assert flask_app.extensions["tarefa"] is flask_project.tarefa

    second = flask_project.create_app(GREETING="Hi again, {}!")  # as each test of an app does
    assert [s for s in jobs.app.job_scopes if isinstance(s, _AppContext)] == scopes
    job = jobs.welcome.enqueue("Caio")
    run_burst()
    assert job.result(timeout=0) == "Hi again, Caio!"  # the latest Flask app's context
    assert scopes[0].flask_app is second


def test_flask_tarefa_worker_runs_jobs_in_the_app_context(flask_app):
    """The worker as an operator runs it, with the app's config from the
    environment (FLASK_GREETING): in its process, in its process-pool child,
    and in each of -p 2's processes."""
    job = jobs.welcome.enqueue("Dora")
    in_child = jobs.where_in_process.enqueue()
    done = flask_cli("tarefa", "worker", "--burst", "-q", "flask")
    assert done.returncode == 0, done.stderr
    assert job.result(timeout=0) == "Olá, Dora!"
    seen = in_child.result(timeout=0)
    assert seen["greeting"] == "Olá, {}!" and seen["fresh_g"], seen

    forked = [jobs.where.enqueue() for _ in range(4)]
    done = flask_cli("tarefa", "worker", "--burst", "-q", "flask", "-p", "2")
    assert done.returncode == 0, done.stderr
    for job in forked:
        seen = job.result(timeout=0)
        assert seen["greeting"] == "Olá, {}!" and seen["fresh_g"], seen


def test_a_flask_app_found_by_flasks_own_search_reaches_the_children(flask_app, tmp_path):
    """No --app: flask finds wsgi.py in the current directory, and so do the
    process-pool children (TAREFA_FLASK_APP set empty)."""
    (tmp_path / "wsgi.py").write_text(
        "from tests.flask_project import create_app\n\napp = create_app()\n"
    )
    in_child = jobs.where_in_process.enqueue()
    done = flask_cli("tarefa", "worker", "--burst", "-q", "flask", app=None, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert in_child.result(timeout=0)["greeting"] == "Olá, {}!"


def test_tarefa_worker_takes_the_flask_app_path_too(flask_app, spawn_worker, monkeypatch):
    """Without the flask command: `tarefa worker tarefa.contrib.flask_app:app`,
    the Flask app named by TAREFA_FLASK_APP."""
    monkeypatch.setenv(ENV, FACTORY)
    job, in_child = jobs.welcome.enqueue("Fabi"), jobs.where_in_process.enqueue()
    worker = spawn_worker("--burst", "-q", "flask", app="tarefa.contrib.flask_app:app")
    assert worker.wait(PATIENCE) == 0, worker.log_path.read_text()
    assert job.result(timeout=0) == "Welcome, Fabi!"
    assert in_child.result(timeout=0)["fresh_g"]


def test_flask_tarefa_runs_every_command(flask_app):
    jobs.welcome.enqueue("Eva")
    listed = flask_cli("tarefa", "info")  # an operator's command: no APP
    assert listed.returncode == 0 and "flask" in listed.stdout, listed.stderr
    described = flask_cli("tarefa", "tasks")  # a command that takes APP
    assert described.returncode == 0, described.stderr
    assert "tests.flask_project.jobs:where_in_process" in described.stdout
    helped = flask_cli("tarefa", "worker", "--help")
    assert helped.returncode == 0 and "flask tarefa worker" in helped.stdout
    wrong = flask_cli("tarefa", "worker", "--concurrency", "none")
    assert wrong.returncode == 2 and "concurrency" in wrong.stderr


def test_a_missing_or_wrong_setting_is_named():
    with pytest.raises(RuntimeError, match="TAREFA_APP"):
        Tarefa(Flask("bare"))  # no App given, none in the config
    with pytest.raises(TypeError, match="must be a tarefa App"):
        Tarefa(app="tests.flask_project.jobs:app")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a Flask app"):
        Tarefa(app=App()).init_app(object())  # type: ignore[arg-type]
    numbered = Flask("numbered")
    numbered.config["TAREFA_APP"] = 42
    with pytest.raises(TypeError, match='TAREFA_APP is a "package.module:app" str'):
        Tarefa(numbered)
    misspelt = Flask("misspelt")
    misspelt.config["TAREFA_APP"] = path = "tests.flask_project.jobs:nope"
    with pytest.raises(ValueError, match="no attribute 'nope'") as raised:
        Tarefa(misspelt)
    assert raised.value.__notes__ == [f"(the Flask config TAREFA_APP = {path!r})"]
    both = Flask("both")
    both.config["TAREFA_APP"] = "tests.flask_project.jobs:app"
    with pytest.raises(ValueError, match="names another App than Tarefa"):
        Tarefa(both, app=App())
    one = Tarefa(both)  # from the config
    other = Flask("other")
    other.config["TAREFA_APP"] = "tests.tasks:app"
    with pytest.raises(ValueError, match="make a Tarefa\\(\\) for each App"):
        one.init_app(other)
    assert "tarefa" not in other.extensions


def test_the_flask_app_path_needs_the_flask_app_named(monkeypatch):
    """`tarefa worker tarefa.contrib.flask_app:app` outside `flask tarefa`,
    with TAREFA_FLASK_APP unset: the error says what to do."""
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(AppImportError, match="TAREFA_FLASK_APP"):
        load_app("tarefa.contrib.flask_app:app")
