"""The Flask app's jobs: each says what it found of the app context."""

from __future__ import annotations

import os

from flask import current_app, g

from tarefa import App

app = App()  # TAREFA_URL


def _seen() -> dict:
    fresh = "visited" not in g  # each job gets an app context, and a g, of its own
    g.visited = True
    return {
        "app": current_app.name,
        "greeting": current_app.config["GREETING"],
        "fresh_g": fresh,
        "pid": os.getpid(),
    }


@app.task(queue="flask", retries=0)
def welcome(name: str) -> str:
    return current_app.config["GREETING"].format(name)


@app.task(queue="flask", retries=0)
def where() -> dict:
    return _seen()


@app.task(queue="flask", retries=0)
async def where_async() -> dict:
    return _seen()


@app.task(queue="flask", retries=0, pool="process")
def where_in_process() -> dict:
    return _seen()
