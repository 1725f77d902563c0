"""A small Flask app, made by its factory: a sign-up route enqueues the
welcome job, and the jobs (jobs.py) read the app's config and ``g`` through
the app context tarefa pushes around each of them."""

from __future__ import annotations

from typing import Any

from flask import Flask, request

from tarefa.contrib.flask import Tarefa

tarefa = Tarefa()  # its App is the one the config names (TAREFA_APP)
teardowns: list[str] = []  # in this process: the app contexts torn down, by app name


def create_app(**config: Any) -> Flask:
    flask_app = Flask(__name__)
    flask_app.config.update(TAREFA_APP="tests.flask_project.jobs:app", GREETING="Welcome, {}!")
    flask_app.config.from_prefixed_env()  # FLASK_GREETING, in the tests' subprocesses
    flask_app.config.update(config)
    tarefa.init_app(flask_app)

    from .jobs import welcome

    @flask_app.post("/signup")
    def signup() -> tuple[dict[str, str], int]:
        job = welcome.enqueue(request.form["name"])
        return {"job": job.id}, 202

    @flask_app.teardown_appcontext
    def torn_down(exc: BaseException | None) -> None:
        teardowns.append(flask_app.config["GREETING"])

    return flask_app
