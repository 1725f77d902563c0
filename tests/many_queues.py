"""An App whose tasks name several queues, one twice (``tarefa worker APP``
with no ``-q`` serves them all, in this order, then ``default``)."""

from __future__ import annotations

from tarefa import App

app = App()  # TAREFA_URL, set by the test session


@app.task(queue="emails")
def send(to: str) -> str:
    return f"sent to {to}"


@app.task(queue="reports")
def report(name: str) -> str:
    return f"report {name}"


@app.task(queue="emails")
def bounce(to: str) -> str:
    return f"bounced {to}"


@app.task
def plain(n: int) -> int:
    return n
