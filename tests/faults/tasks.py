"""The jobs the fault scenarios run, in worker subprocesses.

The queue lives on the Redis under test (``TAREFA_URL``); each execution is
written to a second Redis, the *ledger* (``TAREFA_LEDGER_URL``), which no fault
touches: one entry when an attempt starts and one when it ends, each with the
job's id, the worker's pid and the time on the ledger's clock (one clock for
every process, whatever a worker's own says), so the scenario can count
executions per job and tell which attempts were running at a fault.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import time

import redis

from tarefa import App, current_job

app = App()  # TAREFA_URL: the Redis under test

STARTS, ENDS = "faults:starts", "faults:ends"
_ledger: tuple[int, redis.Redis] | None = None


def ledger() -> redis.Redis:
    """This process's client of the ledger (a new one after a fork)."""
    global _ledger
    if _ledger is None or _ledger[0] != os.getpid():
        url = os.environ["TAREFA_LEDGER_URL"]
        _ledger = (os.getpid(), redis.Redis.from_url(url, socket_timeout=None))
    return _ledger[1]


# Appends "<job id> <pid> <seconds>" with the ledger server's time.
LOG = """local t = redis.call('TIME')
return redis.call('RPUSH', KEYS[1], ARGV[1] .. ' ' .. t[1] .. '.' .. string.format('%06d', t[2]))"""


def _log(key: str) -> None:
    ledger().eval(LOG, 1, key, f"{current_job().id} {os.getpid()}")


@app.task(retries=0)
def work(ms: float = 0) -> None:
    _log(STARTS)
    time.sleep(ms / 1000)  # the job's work: an e-mail, a webhook, a PDF
    _log(ENDS)


@app.task(retries=0)
async def awork(ms: float = 0) -> None:
    _log(STARTS)
    await asyncio.sleep(ms / 1000)
    _log(ENDS)


@app.task(retries=0)
def crash(how: str = "exit") -> None:
    """Poison: takes its whole process down, every time."""
    _log(STARTS)
    if how == "segfault":
        ctypes.string_at(0)  # reads address 0: SIGSEGV
    os._exit(13)


@app.task(retries=1, timeout=1)
def hang() -> None:
    """Never returns: its timeout ends it, twice (one retry)."""
    _log(STARTS)
    while True:
        time.sleep(1)


@app.task(retries=1)
def hog() -> None:
    """Allocates without bound, 16 MiB at a time, each page written."""
    _log(STARTS)
    held = []
    while True:
        held.append(b"x" * (16 << 20))
        time.sleep(0.005)


@app.task(retries=0)
def unstorable() -> object:
    """Runs, then returns what JSON cannot hold."""
    _log(STARTS)
    _log(ENDS)
    return object()


@app.task(queue="cron", cron="* * * * * *")
def tick() -> None:
    """Every second: logs its run (the job's id names its tick)."""
    _log(STARTS)
    _log(ENDS)
