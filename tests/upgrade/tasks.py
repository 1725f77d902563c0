"""The jobs the upgrade tests run, in worker subprocesses of both releases: the
previous one (tarefa 0.1.0, installed by the tests, see conftest.py) and this
checkout. So only API that both have is used here.

Each attempt is logged in the ledger as the fault scenarios log theirs
(tests/faults/tasks.py: a second Redis, with the job's id, the worker's pid
and the ledger's time), so a test counts executions per job.
"""

from __future__ import annotations

import time

from tarefa import App, current_job

from ..faults.tasks import ENDS, STARTS, _log, ledger

app = App()  # TAREFA_URL: the Redis both releases share

try:  # this release traces: the jobs it stores carry a trace field the previous one never read
    from opentelemetry.sdk.trace import TracerProvider

    from tarefa.contrib.otel import instrument
except ImportError:  # tarefa 0.1.0
    pass
else:
    instrument(app, tracer_provider=TracerProvider())

BROKEN = "upgrade:broken"  # set in the ledger: flaky() fails
HELD, STOPPED = "upgrade:held", "upgrade:stopped"  # hold() started; hold() saw it was cancelled


def release_key(tag: str) -> str:
    return f"upgrade:release:{tag}"


@app.task(retries=0)
def echo(tag: str) -> str:
    _log(STARTS)
    _log(ENDS)
    return tag


@app.task(retries=0)
def merge(results: list, tag: str) -> str:
    """A group's callback: its parents' results come first."""
    _log(STARTS)
    _log(ENDS)
    return "+".join(results) + ">" + tag


@app.task(retries=0)
def work(ms: float = 0) -> None:
    _log(STARTS)
    time.sleep(ms / 1000)  # the job's work
    _log(ENDS)


@app.task(retries=0)
def flaky(tag: str) -> str:
    """Fails (a dead letter, no retries) while the ledger says it is broken."""
    _log(STARTS)
    if ledger().exists(BROKEN):
        raise RuntimeError(f"{tag}: broken")
    _log(ENDS)
    return tag


@app.task(retries=0)
def hold(tag: str) -> str:
    """Runs until the test releases it, or stops when its attempt is cancelled
    (the worker's heartbeat learnt it lost the lease)."""
    _log(STARTS)
    ledger().rpush(HELD, tag)
    while not current_job().cancelled:
        if ledger().blpop([release_key(tag)], timeout=0.05):
            _log(ENDS)
            return tag
    ledger().rpush(STOPPED, tag)
    return "stopped"
