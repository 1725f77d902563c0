"""tarefa in a Flask app::

    tarefa = Tarefa(app=jobs.app)  # or Tarefa() and the config TAREFA_APP = "shop.jobs:app"

    def create_app() -> Flask:
        flask_app = Flask(__name__)
        tarefa.init_app(flask_app)
        return flask_app

Every job of the App then runs inside an app context of the Flask app, a
fresh one per job (``current_app``, its config and extensions; ``g`` starts
empty; ``teardown_appcontext`` functions run as the job ends), where the job
runs: its pool thread, the event loop for an async task, a process-pool
child. ``flask --app shop tarefa worker -q emails`` runs any ``tarefa``
command with the App as APP.

A worker's process-pool children import the App afresh, by a path:
``flask tarefa`` gives tarefa's commands ``tarefa.contrib.flask_app:app``,
and sets ``TAREFA_FLASK_APP`` to the Flask app's import path (what ``--app``
or ``FLASK_APP`` named; empty: Flask's own search, ``wsgi.py`` or ``app.py``).
In ``flask tarefa``'s process, and in the ``-p N`` processes forked from it,
that path gives the App of the Flask app it loaded; a fresh process loads the
Flask app as ``flask`` does, from ``TAREFA_FLASK_APP``, running its factory,
and so ``init_app``. A Flask app that a custom ``FlaskGroup(create_app=...)``
makes has no import path: set ``TAREFA_FLASK_APP`` yourself for a process
pool. ``TAREFA_FLASK_APP=shop tarefa worker tarefa.contrib.flask_app:app``
runs the same worker without the ``flask`` command.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import click
from flask import Flask
from flask.cli import ScriptInfo
from flask.ctx import AppContext

from ..app import App
from ..loading import load_app
from .commands import run_tarefa

ENV = "TAREFA_FLASK_APP"  # the Flask app's import path, for processes that load it afresh
APP = "tarefa.contrib.flask_app:app"  # the APP path `flask tarefa` gives tarefa's commands
SETTING = "TAREFA_APP"  # the Flask config naming the App, "package.module:app"

_running: Flask | None = None  # the Flask app `flask tarefa` runs, in its process and forks


class Tarefa:
    """The Flask extension: ``Tarefa(flask_app, app=...)``, or ``Tarefa(app=...)``
    and ``init_app(flask_app)`` in the app factory. The tarefa App is the one
    given here, else the one the Flask config ``TAREFA_APP`` names."""

    def __init__(self, flask_app: Flask | None = None, app: App | None = None) -> None:
        if app is not None and not isinstance(app, App):
            raise TypeError(f"app must be a tarefa App, not {type(app).__name__}")
        self._given = app
        self.app: App | None = app  # None until init_app finds it in the config
        if flask_app is not None:
            self.init_app(flask_app)

    def init_app(self, flask_app: Flask) -> None:
        """Run every job of the App in an app context of ``flask_app``, add
        the ``flask tarefa`` command, and keep this extension in
        ``flask_app.extensions["tarefa"]``. Again for the same Flask app, it
        changes nothing. An App serves one Flask app at a time: its jobs run
        in the app context of the Flask app last given to ``init_app`` (an
        app factory called again, in tests, makes the new app the one)."""
        if not isinstance(flask_app, Flask):
            raise TypeError(f"flask_app must be a Flask app, not {type(flask_app).__name__}")
        configured = _configured(flask_app)
        app = self._given if self._given is not None else configured
        if app is None:
            raise RuntimeError(
                f"tarefa's Flask extension needs the tarefa App: Tarefa(app=...), or the "
                f'Flask config {SETTING} = "package.module:app" (unset in {flask_app.name})'
            )
        if configured is not None and configured is not app:
            raise ValueError(f"the Flask config {SETTING} names another App than Tarefa(app=...)")
        if self.app is not None and app is not self.app:
            raise ValueError(
                f"this Tarefa extension serves another App already: {SETTING} of "
                f"{flask_app.name} names another; make a Tarefa() for each App"
            )
        self.app = app
        _run_jobs_in(app, flask_app)
        flask_app.extensions["tarefa"] = self
        flask_app.cli.add_command(_command(flask_app))


def _configured(flask_app: Flask) -> App | None:
    path = flask_app.config.get(SETTING)
    if path is None:
        return None
    if not isinstance(path, str):
        raise TypeError(
            f'the Flask config {SETTING} is a "package.module:app" str, not {type(path).__name__}'
        )
    try:
        return load_app(path)
    except Exception as exc:
        exc.add_note(f"(the Flask config {SETTING} = {path!r})")
        raise


class _AppContext:
    """The scope around each job: an app context of the App's Flask app."""

    def __init__(self, flask_app: Flask) -> None:
        self.flask_app = flask_app

    def __call__(self) -> AppContext:
        return self.flask_app.app_context()


def _run_jobs_in(app: App, flask_app: Flask) -> None:
    for scope in app.job_scopes:
        if isinstance(scope, _AppContext):
            scope.flask_app = flask_app  # the same scope, now for this Flask app
            return
    app.around_each_job(_AppContext(flask_app))


def _command(flask_app: Flask) -> click.Command:
    @click.command(
        "tarefa",
        context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
        add_help_option=False,  # `flask tarefa --help`: tarefa's
    )
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def tarefa(args: Sequence[str]) -> None:
        """tarefa's commands (worker, info, jobs, dashboard...) for this app's tarefa App."""
        global _running
        _running = flask_app
        info = click.get_current_context().find_object(ScriptInfo)
        if info is not None and info.create_app is None:
            os.environ[ENV] = info.app_import_path or ""
        run_tarefa(args, APP, prog_name="flask tarefa")

    return tarefa


def cli_app() -> App:
    """The App of the Flask app ``flask tarefa`` runs (``tarefa.contrib.flask_app:app``):
    in its process and forks, the Flask app it loaded; elsewhere, the Flask
    app ``TAREFA_FLASK_APP`` names, loaded as ``flask`` does."""
    flask_app = _running
    if flask_app is None:
        path = os.environ.get(ENV)
        if path is None:
            raise RuntimeError(
                f"{APP} is the App of the Flask app that `flask tarefa` runs, and {ENV} "
                "(which it sets) is unset: run `flask --app yourapp tarefa ...`, or set "
                f"{ENV} to the Flask app's import path, as `flask --app` takes it"
            )
        flask_app = ScriptInfo(app_import_path=path or None).load_app()
    extension = flask_app.extensions.get("tarefa")
    if not isinstance(extension, Tarefa) or extension.app is None:
        raise RuntimeError(
            f"the Flask app {flask_app.name} has no tarefa extension: call "
            "Tarefa(app=...).init_app(flask_app) where it is made"
        )
    return extension.app
