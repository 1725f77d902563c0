"""Tasks the tests enqueue, run by in-process and subprocess workers alike.

Each records what it does in Redis (lists under ``test:``), so a test can wait
for an event (BLPOP) and count executions instead of sleeping.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import resource
import signal
import threading
import time

import redis
import redis.asyncio

from tarefa import App, Retry, current_job

app = App()  # TAREFA_URL, set by the test session


def r() -> redis.Redis:
    return redis.Redis.from_url(os.environ["TAREFA_URL"], socket_timeout=None)


@app.task
def add(a: int, b: int) -> int:
    return a + b


@app.task
async def async_add(a: int, b: int) -> int:
    await asyncio.sleep(0)
    return a + b


@app.task
def record(tag: str) -> str:
    """Logs each execution: the test counts them (at-least-once, none lost)."""
    r().rpush("test:runs", tag)
    return tag


@app.task
def deliver(tag: str, body: str) -> None:
    """An e-mail-like job whose body makes most of its payload; logs its tag."""
    r().rpush("test:runs", tag)


@app.task(retries=2, backoff=0.01)
def always_fails(message: str) -> None:
    raise ValueError(message)


@app.task(retries=3, backoff=0.01)
def flaky(key: str, failures: int) -> int:
    """Fails ``failures`` times, then succeeds; returns the attempt number."""
    if r().incr(f"test:flaky:{key}") <= failures:
        raise ConnectionError(f"failure {current_job().attempt}")
    return current_job().attempt


@app.task(retries=1)
def retry_later(key: str, delay: float) -> str:
    if r().incr(f"test:retry:{key}") == 1:
        raise Retry(delay=delay, reason="not yet")
    return "done"


@app.task(retries=0)
def hold(tag: str, timeout: float = 30) -> str:
    """Signals that it started, then holds until the test releases it."""
    client = r()
    client.rpush("test:started", tag)
    client.blpop([f"test:release:{tag}"], timeout=timeout)
    client.rpush("test:runs", tag)
    return tag


@app.task(retries=0)
def hold_at(tag: str, value: float, timeout: float = 30) -> str:
    """Reports ``value`` as its progress, then holds as ``hold`` does."""
    current_job().progress(value, "halfway")
    return hold.fn(tag, timeout)


@app.task(retries=0)
async def ahold(tag: str, timeout: float = 30) -> str:
    client = redis.asyncio.Redis.from_url(os.environ["TAREFA_URL"], socket_timeout=None)
    await client.rpush("test:started", tag)
    await client.blpop([f"test:release:{tag}"], timeout=timeout)
    await client.rpush("test:runs", tag)
    await client.aclose()
    return tag


@app.task(retries=0)
async def drops_a_cancellation(tag: str) -> str:
    """Goes on after its first cancellation, as a call of redis.asyncio may on
    Python 3.11 (its asyncio.wait_for returns a send that completes as the
    cancellation lands, and drops the cancellation); then holds until released."""
    client = redis.asyncio.Redis.from_url(os.environ["TAREFA_URL"], socket_timeout=None)
    try:
        await client.rpush("test:started", tag)
        try:
            await asyncio.sleep(120)
        except asyncio.CancelledError:
            pass  # dropped
        await client.blpop([f"test:release:{tag}"], timeout=120)
        await client.rpush("test:runs", tag)
        return tag
    finally:
        await client.aclose()


@app.task(retries=0, timeout=0.2)
async def too_slow() -> None:
    await asyncio.sleep(30)


@app.task(retries=0, timeout=0.2)
def too_slow_sync(seconds: float = 1) -> None:
    time.sleep(seconds)


@app.task
def returns_unstorable() -> object:
    return object()


@app.task(retries=3, backoff=0.01)
def returns_text(size: int) -> str:
    """A result of ``size`` characters: ``size + 2`` bytes as JSON."""
    r().rpush("test:runs", f"text {size}")
    return "x" * size


@app.task(retries=3, backoff=0.01, pool="process")
def returns_text_in_process(size: int) -> str:
    r().rpush("test:runs", f"text {size}")
    return "x" * size


@app.task(retries=3, backoff=0.01)
async def async_returns_text(size: int) -> str:
    r().rpush("test:runs", f"text {size}")
    return "x" * size


@app.task
def whoami() -> dict:
    job = current_job()
    return {"id": job.id, "queue": job.queue, "task": job.task, "attempt": job.attempt}


@app.task(retries=0)
def overlap(tag: str) -> None:
    """Records how many of these run at once (the worker's concurrency bound)."""
    client = r()
    client.rpush("test:overlap", client.incr("test:running"))
    time.sleep(0.02)
    client.decr("test:running")
    client.rpush("test:runs", tag)


@app.task(retries=0)
async def raises_cancelled() -> None:
    raise asyncio.CancelledError("the job's own cancellation, not the worker's")


@app.task(retries=0)
def raises_keyboard_interrupt() -> None:
    raise KeyboardInterrupt


@app.task(retries=0)
async def raises_system_exit() -> None:
    raise SystemExit(3)


@app.task
async def report_progress(steps: int) -> int:
    for step in range(1, steps + 1):
        current_job().progress(step / steps, f"step {step} of {steps}")
    return steps


@app.task
def report_progress_sync(steps: int) -> int:
    for step in range(1, steps + 1):
        current_job().progress(step / steps, f"step {step} of {steps}")
    return steps


@app.task(retries=0)
def bad_progress() -> None:
    current_job().progress("half")


@app.task(retries=0)
def fails_saying(message: str) -> None:
    """Reports progress, then fails, both with the message it is given."""
    current_job().progress(0.5, message)
    raise ValueError(message)


@app.task(retries=0)
def until_cancelled(tag: str) -> str:
    """A long sync job that checks for cancellation between steps."""
    r().rpush("test:started", tag)
    while not current_job().cancelled:
        time.sleep(0.01)  # one step of the job's own work
    r().rpush("test:runs", f"{tag} stopped")
    return "stopped"


@app.task(queue="cron-test", cron="* * * * * *")  # every second
def every_second() -> str:
    r().rpush("test:cron", current_job().id)
    return current_job().id


@app.task(queue="cron-hourly", cron="0 * * * *", tz="America/Sao_Paulo")
def hourly() -> str:
    r().rpush("test:cron", current_job().id)
    return current_job().id


# Two schedules in one queue: a worker schedules them in this order, so the
# sentinel's next run appearing tells a test the worker has dealt with
# ``guarded`` too.
@app.task(queue="cron-guard", cron="0 * * * *")
def guarded() -> str:
    r().rpush("test:cron", current_job().id)
    return current_job().id


@app.task(queue="cron-guard", cron="0 0 1 1 *")  # once a year: never runs in a test
def guard_sentinel() -> None:
    pass


@app.task(retries=0)
def progress_from_own_loop() -> str:
    """A sync job driving async code of its own, reporting progress from it."""

    async def inner() -> str:
        current_job().progress(0.9, "inner loop")
        return "done"

    return asyncio.run(inner())


# -- flow control (tests/worker/test_flow_control.py) --------------------------------

app.configure_queue("limited", rate_limit="10/s")
app.configure_queue("per-key", key_concurrency=2)


@app.task(queue="per-key", retries=0)
def keyed_overlap(key: str) -> None:
    """Records how many jobs of one key run at once, across all workers."""
    client = r()
    client.rpush(f"test:overlap:{key}", client.incr(f"test:running:{key}"))
    time.sleep(0.2)  # the job's work: long enough for jobs to overlap, even on a loaded machine
    client.decr(f"test:running:{key}")
    client.rpush("test:runs", key)


@app.task(retries=0)
def merge(results: list, label: str) -> str:
    """A group's callback: the members' results come first."""
    return f"{label}: {results}"


# -- process pool -------------------------------------------------------------


@app.task(retries=0)
def pid() -> int:
    """Where it ran: the worker's pid, or a child process's."""
    return os.getpid()


@app.task(retries=0, pool="thread")
def pid_in_thread() -> int:
    return os.getpid()


@app.task(retries=0, pool="process")
def pid_in_process() -> int:
    return os.getpid()


@app.task(retries=0, pool="process")
def hold_in_process(tag: str, timeout: float = 30) -> str:
    """Signals its pid, then holds until the test releases it."""
    client = r()
    client.rpush(f"test:pids:{tag}", os.getpid())
    client.blpop([f"test:release:{tag}"], timeout=timeout)
    client.rpush("test:runs", tag)
    return tag


@app.task(retries=1, backoff=0.01, timeout=0.5, pool="process")
def stuck_in_process(tag: str) -> None:
    """Signals its pid, then runs past its timeout."""
    r().rpush(f"test:pids:{tag}", os.getpid())
    time.sleep(30)
    r().rpush("test:runs", tag)


@app.task(retries=1, backoff=0.01, pool="process")
def dies(how: str) -> None:
    """Its process dies under it: os._exit(3), a segfault, or SIGKILL (as the
    OOM killer does)."""
    r().rpush("test:pids:dies", os.getpid())
    crash(how)


def crash(how: str) -> None:
    """End this process as a job can: os._exit(3), a segfault (reading address
    0, as a bug in C code does), or SIGKILL."""
    if how == "exit":
        os._exit(3)
    if how == "segfault":
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file left behind
        ctypes.string_at(0)
    os.kill(os.getpid(), signal.SIGKILL)


@app.task(retries=0, pool="thread")
def kills_worker(how: str) -> None:
    """Kills the process it runs in: in a thread, the worker itself."""
    r().rpush("test:started", f"kills_worker {os.getpid()}")
    crash(how)


@app.task(retries=0)
async def kills_worker_async(how: str) -> None:
    r().rpush("test:started", f"kills_worker {os.getpid()}")
    crash(how)


@app.task(retries=1, backoff=0.01, timeout=0.3, pool="thread")
def hangs_in_thread(tag: str) -> None:
    """Never returns, as far as its attempt can tell: it blocks past its timeout
    until the test releases it (or for a minute)."""
    client = r()
    client.rpush("test:started", f"{tag} {current_job().attempt}")
    client.blpop([f"test:release:{tag}"], timeout=60)
    client.rpush("test:returned", tag)


def _hook(name: str):
    def hook(job, error, *delay) -> None:
        r().rpush("test:hooks", f"{name} {job.attempt} {type(error).__name__}")

    return hook


@app.task(
    retries=1, backoff=0.01, timeout=0.3, pool="thread",
    on_retry=_hook("retry"), on_failure=_hook("failure"),
)  # fmt: skip
def hangs_with_hooks(tag: str) -> None:
    """hangs_in_thread, with sync hooks: they need a thread of their own."""
    hangs_in_thread.fn(tag)


@app.task(retries=1, backoff=0.01, pool="process")
def allocates(how: str) -> int:
    """Allocates without bound (a leak in a loop), or one huge buffer (as an
    array library does), touching every byte; gives up at 4 GiB."""
    r().rpush("test:pids:allocates", os.getpid())
    if how == "grow":
        kept = []
        while len(kept) < 256:
            kept.append(bytearray(16 << 20))
        return len(kept)
    return len(bytearray(4 << 30))


@app.task(retries=0, pool="process")
def allocates_after_returning(megabytes: int) -> int:
    """Returns at once, leaving a thread that allocates ``megabytes`` once the
    test says so, and holds them: the process is bigger for the next job."""

    def grow() -> None:
        client = r()
        client.blpop(["test:release:grow"], timeout=30)
        kept = bytearray(megabytes << 20)
        client.rpush("test:grown", len(kept))
        time.sleep(60)

    threading.Thread(target=grow, daemon=True).start()
    return os.getpid()


@app.task(retries=0)
async def ignores_cancel(tag: str) -> str:
    """Swallows the worker's cancellation, as careless code (or a library) may."""
    r().rpush("test:started", tag)
    while True:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            r().rpush("test:cancel-ignored", tag)


@app.task(retries=0, timeout=1)
async def blocks_loop(tag: str, seconds: float) -> str:
    """Calls blocking code from an async task: the event loop is held meanwhile."""
    r().rpush("test:started", tag)
    time.sleep(seconds)
    r().rpush("test:runs", tag)
    return tag


@app.task(retries=0)
def says(message: str) -> None:
    """Writes a line through the job's own logger (current_job().logger)."""
    current_job().logger.info("it says %s", message)


@app.task(retries=0, pool="process")
def says_in_process(message: str) -> None:
    current_job().logger.info("it says %s", message)


@app.task
def total(results: list[int], plus: int = 0) -> int:
    """A group's callback: the sum of its members' results."""
    return sum(results) + plus
