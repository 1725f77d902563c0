"""An App with a job scope (App.around_each_job), as a framework adds one:
each task answers whether the scope was around it, where it ran."""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager

from tarefa import App

app = App()
inside = threading.local()  # set by the scope in the thread that runs the job
exits: list[str] = []  # in this process: each scope's exit, in order


@contextmanager
def outer():
    inside.outer = True
    try:
        yield
    finally:
        inside.outer = False
        exits.append("outer")


@contextmanager
def inner():
    inside.depth = getattr(inside, "outer", False)  # entered within outer
    try:
        yield
    finally:
        exits.append("inner")


app.around_each_job(outer)
app.around_each_job(inner)


def _seen() -> dict:
    return {
        "outer": getattr(inside, "outer", False),
        "nested": getattr(inside, "depth", False),
        "thread": threading.get_ident(),
        "pid": os.getpid(),
    }


@app.task(retries=0)
def sync_job() -> dict:
    return _seen()


@app.task(retries=0)
async def async_job() -> dict:
    return _seen()


@app.task(retries=0, pool="process")
def process_job() -> dict:
    return _seen()


@app.task(retries=0)
def failing_job() -> None:
    raise ValueError("inside the scope")
