"""What every peer's no-op job shares: a count of finished jobs, on the Redis clock.

A job calls ``done()`` (sync code) or ``await adone()`` (a coroutine). Each adds
one to a counter in its worker process (``next()`` on an ``itertools.count`` is
atomic under the GIL, so worker threads need no lock) and goes to Redis only:

- on the process's first job: ``peers:first:<key>`` = Redis TIME (SET NX:
  the earliest wins);
- on every PEERS_EVERY-th job (100 by default): INCRBY ``peers:done:<key>`` by
  PEERS_EVERY and ``peers:last:<key>`` = Redis TIME.

So the job stays a no-op (one round trip per 100 jobs), and bench/peers.py
gets jobs / (last - first) on the Redis clock for every library alike, worker
start-up, imports and shut-down left out. A worker that forks per job (RQ's
default) runs each job in a fresh process that cannot keep a count: it runs with
PEERS_EVERY=1, one round trip per job. ``<key>`` is the row of the table
(PEERS_KEY), so one task module can serve two worker modes.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time

import redis
import redis.asyncio

URL = os.environ.get("PEERS_URL", "redis://127.0.0.1:6379")
KEY = os.environ.get("PEERS_KEY", "unset")
EVERY = int(os.environ.get("PEERS_EVERY", "100"))
KEYS = [f"peers:done:{KEY}", f"peers:first:{KEY}", f"peers:last:{KEY}"]

MARK_LUA = """
local t = redis.call('TIME')
local us = tonumber(t[1]) * 1000000 + tonumber(t[2])
if ARGV[2] == '1' then redis.call('SET', KEYS[2], us, 'NX') end
local inc = tonumber(ARGV[1])
if inc > 0 then
  redis.call('INCRBY', KEYS[1], inc)
  redis.call('SET', KEYS[3], us)
end
return inc
"""

_count = itertools.count(1)
_sync_script = None
_async_script = None


def _step() -> tuple[int, bool]:
    """This job's (increment, is-first): (0, False) means no round trip."""
    n = next(_count)
    return (EVERY if n % EVERY == 0 else 0), n == 1


def done(client: redis.Redis | None = None) -> None:
    """Counts one finished job, from sync code. ``client``: the library's own
    connection, where a job has one (RQ's work horse)."""
    global _sync_script
    inc, first = _step()
    if not (inc or first):
        return
    if client is not None:
        client.register_script(MARK_LUA)(keys=KEYS, args=[inc, int(first)])
        return
    if _sync_script is None:
        _sync_script = redis.Redis.from_url(URL).register_script(MARK_LUA)
    _sync_script(keys=KEYS, args=[inc, int(first)])


async def adone() -> None:
    """Counts one finished job, from the worker's event loop."""
    global _async_script
    inc, first = _step()
    if not (inc or first):
        return
    if _async_script is None:
        _async_script = redis.asyncio.Redis.from_url(URL).register_script(MARK_LUA)
    await _async_script(keys=KEYS, args=[inc, int(first)])


SLICES = 4  # the enqueue loop runs in this many slices, each after a PING slice


def _ping_slice(client: redis.Redis, seconds: float) -> tuple[int, float]:
    n, start = 0, time.perf_counter()
    end = start + seconds
    while True:
        client.ping()
        n += 1
        if time.perf_counter() >= end:
            return n, time.perf_counter() - start


def timed_loop(call, seconds: float) -> tuple[float, float]:
    """Calls ``call(i)`` back to back for ``seconds`` (after a warm-up call), in
    SLICES slices, each after a PING loop half as long: (calls/s, PINGs/s), so
    the two rates come from the same stretch of the machine's time."""
    ping = redis.Redis.from_url(URL)
    ping.ping()
    call(-1)
    calls = pings = 0
    call_time = ping_time = 0.0
    for _ in range(SLICES):
        n, elapsed = _ping_slice(ping, seconds / SLICES / 2)
        pings, ping_time = pings + n, ping_time + elapsed
        start = time.perf_counter()
        end = start + seconds / SLICES
        while True:
            call(calls)
            calls += 1
            if time.perf_counter() >= end:
                break
        call_time += time.perf_counter() - start
    ping.close()
    return calls / call_time, pings / ping_time


async def atimed_loop(call, seconds: float) -> tuple[float, float]:
    """``timed_loop`` for a coroutine ``call(i)``, awaited one at a time in this
    event loop (the PING slices are sync redis-py calls, as in the harness)."""
    ping = redis.Redis.from_url(URL)
    ping.ping()
    await call(-1)
    calls = pings = 0
    call_time = ping_time = 0.0
    for _ in range(SLICES):
        n, elapsed = _ping_slice(ping, seconds / SLICES / 2)
        pings, ping_time = pings + n, ping_time + elapsed
        start = time.perf_counter()
        end = start + seconds / SLICES
        while True:
            await call(calls)
            calls += 1
            if time.perf_counter() >= end:
                break
        call_time += time.perf_counter() - start
    ping.close()
    return calls / call_time, pings / ping_time


async def agather(call, n: int, chunk: int = 100) -> None:
    """Enqueues ``n`` jobs with ``call(i)``, ``chunk`` at a time (preloading only)."""
    for first in range(0, n, chunk):
        await asyncio.gather(*(call(i) for i in range(first, min(first + chunk, n))))
