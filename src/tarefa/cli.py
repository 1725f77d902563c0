"""The ``tarefa`` command line."""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
import threading
from collections import Counter
from types import FrameType

import click
from rich.console import Console

from . import logs
from .cli_ops import COMMANDS, UnreachableExit, converted, load_app_or_exit
from .cli_relay import outbox_url_or_exit, relay, relaying
from .cli_tables import add_row, plain, titled
from .cli_worker import Metrics, parse_processes, serve_metrics, supervise, worker_process
from .store import REFUSED, Embedded, EmbeddedError, describe_error, redacted

log = logging.getLogger("tarefa.worker")

# Piped into a script or a log: no 80-column wrapping or truncation.
console = Console(width=None if sys.stdout.isatty() else 200)

# What tarefa dashboard needs beyond the core install: the "dashboard" extra.
DASHBOARD_MODULES = frozenset({"fastapi", "starlette", "uvicorn"})


def _parse_size(text: str) -> int:
    from .worker.memory import parse_size  # (the worker loads only for `tarefa worker`)

    return parse_size(text)


@click.group()
@click.version_option(package_name="tarefa")
def main() -> None:
    """tarefa: background jobs for Python on Redis.

    Redis is the one TAREFA_URL names (redis://, rediss://, unix://,
    redis+sentinel://, redis+cluster://), or the file TAREFA_URL_FILE; unset,
    a private redis-server is started under ./.tarefa/ (or the nearest
    .tarefa/ in a parent directory) and shared by every tarefa process run
    from this directory or below.
    """


@main.command()
@click.argument("app_path", metavar="APP")
@click.option(
    "-q",
    "--queue",
    "queues",
    multiple=True,
    help="Queue to serve (repeat; first listed served first). Default: every queue APP's "
    "tasks name, in the order they are declared, then default.",
)
@click.option(
    "-c",
    "--concurrency",
    default=10,
    show_default=True,
    type=click.IntRange(1),
    help="Jobs run at once.",
)
@click.option(
    "--burst",
    is_flag=True,
    help="Exit once the queues are empty (nothing ready, scheduled or running).",
)
@click.option(
    "--lease",
    default=20.0,
    show_default=True,
    type=click.FloatRange(0.1),
    help="Seconds a job's lease lasts unless renewed; a dead worker's jobs are recovered after it.",
)
@click.option(
    "--grace",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds running jobs get to finish on SIGTERM before they are handed back.",
)
@click.option(
    "--pool",
    type=click.Choice(["thread", "process"]),
    default="thread",
    show_default=True,
    help="Where sync tasks run: threads, or child processes (killed on timeout or cancel). "
    "A task's own @app.task(pool=...) wins.",
)
@click.option(
    "--max-memory",
    metavar="SIZE",
    callback=converted(_parse_size),
    help="Kill a process-pool job's process once its resident memory passes SIZE (512M, 2G); "
    "the attempt fails with WorkerProcessDied and is retried per the task's retries. "
    "Thread and async jobs share the worker's memory: not bounded.",
)
@click.option(
    "-p",
    "--processes",
    default="1",
    show_default=True,
    metavar="N|auto",
    callback=converted(parse_processes),
    help="Worker processes, forked from one supervisor that imported APP once; auto: one "
    "per CPU. The supervisor replaces a process that dies and stops them all on SIGTERM.",
)
@click.option(
    "--max-jobs-per-process",
    type=click.IntRange(1),
    metavar="M",
    help="Replace each worker process with a fresh one once it has run M jobs (it lets them "
    "finish, then exits); with -p 1 too.",
)
@click.option(
    "--relay-outbox",
    is_flag=True,
    help="Also move the PostgreSQL outbox's jobs (TAREFA_OUTBOX_URL) to Redis, in a thread "
    "(with -p N, one per process; any number of relays may run).",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    help="Serve this worker's Prometheus metrics at http://HOST:PORT/metrics (with -p N, "
    "worker process i on PORT+i-1).",
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    help="Address the metrics port binds (0.0.0.0: every interface).",
)
@click.option(
    "--metrics-allowed-host",
    "metrics_allowed_hosts",
    multiple=True,
    metavar="NAME",
    help="A name or address Prometheus scrapes the metrics port by, besides localhost, "
    "127.0.0.1, [::1] and --metrics-host (repeat); others get 400, so that no web page can "
    "read them through DNS rebinding. '*' allows any: unsafe.",
)
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Also log a line (INFO) as each job starts and ends: id, task, queue, attempt, duration.",
)
@click.option(
    "--log-level",
    type=click.Choice(list(logs.LEVELS), case_sensitive=False),
    help="Lowest level logged, tarefa's and every library's (debug: Redis's and asyncio's "
    "too). Default: info. Not applied when the app configured logging itself.",
)
@click.option(
    "--log-format",
    type=click.Choice(logs.FORMATS, case_sensitive=False),
    default="text",
    show_default=True,
    help="text, or json: one object per line (time, level, logger, message, and a job's "
    "fields). Not applied when the app configured logging itself.",
)
def worker(
    app_path: str,
    queues: tuple[str, ...],
    concurrency: int,
    burst: bool,
    lease: float,
    grace: float,
    pool: str,
    max_memory: int | None,
    processes: int,
    max_jobs_per_process: int | None,
    relay_outbox: bool,
    metrics_port: int | None,
    metrics_host: str,
    metrics_allowed_hosts: tuple[str, ...],
    verbose: bool,
    log_level: str | None,
    log_format: str,
) -> None:
    """Run jobs of APP (package.module:app) from the given queues."""
    from .worker import Worker
    from .worker.waits import run

    if verbose and log_level in ("warning", "error"):
        raise click.UsageError(
            f"-v logs each job at INFO, which --log-level {log_level} would hide: "
            "give one or the other"
        )
    metrics = Metrics(metrics_host, metrics_port, metrics_allowed_hosts) if metrics_port else None
    outbox_url = outbox_url_or_exit() if relay_outbox else None
    supervised = processes > 1 or max_jobs_per_process is not None
    # Until the worker's own handlers are in place (it runs), SIGTERM or
    # SIGINT ends the start: nothing was leased yet, so it exits 0.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop_before_start)
    code = 0
    try:
        try:
            app = load_app_or_exit(app_path)
        finally:  # after the app's import: a configuration of its own stands
            _setup_logging(log_level, log_format)
        try:
            url = app.store.url  # where Redis is: fail now on a bad TAREFA_URL
            make_worker = functools.partial(
                Worker, app, queues or app.task_queues(), concurrency=concurrency, burst=burst,
                lease=lease, grace=grace, pool=pool, app_path=app_path, max_memory=max_memory,
                verbose=verbose, max_jobs=max_jobs_per_process,
            )  # fmt: skip
            w = make_worker()  # checks the settings: with -p N, before any fork
        except (ValueError, EmbeddedError) as exc:
            raise click.UsageError(str(exc)) from None
        log.info("Redis: %s", redacted(url))
        if supervised:
            child = functools.partial(worker_process, make_worker, metrics, url, burst, outbox_url)
            code = supervise(app, child, processes, grace, metrics)
        else:
            serve_metrics(w, metrics)
            with relaying(app, outbox_url):
                run(w.run())
    except _StoppedBeforeStart as stopped:
        log.info("%s before the worker started: exiting", stopped)
    except REFUSED as exc:  # wrong credentials, or an ACL without a command tarefa needs
        raise UnreachableExit(describe_error(url, exc)) from None
    logging.shutdown()
    if code:
        sys.exit(code)
    if any(t is not threading.main_thread() and not t.daemon for t in threading.enumerate()):
        # A sync job that outlived the grace period still holds a thread; its
        # job was handed back, so leave without waiting for it.
        sys.stdout.flush()
        os._exit(0)


def _setup_logging(level: str | None, fmt: str) -> None:
    """Log as asked, unless the app's import configured logging (then say so,
    through its handlers, if the options asked for something)."""
    if not logs.setup(level or "info", fmt) and (level or fmt != "text"):
        logging.getLogger("tarefa.worker").info(
            "logging is configured by the app: --log-level and --log-format not applied"
        )


class _StoppedBeforeStart(BaseException):
    """SIGTERM or SIGINT while the app was still being imported."""


def _stop_before_start(signum: int, frame: FrameType | None) -> None:
    raise _StoppedBeforeStart(signal.Signals(signum).name)


@main.command()
@click.argument("app_path", metavar="APP")
def cron(app_path: str) -> None:
    """The cron schedules of APP, with their next run."""
    from datetime import UTC, datetime

    from .worker.scheduler import next_tick

    app = load_app_or_exit(app_path)
    table = titled("cron schedules")
    for column in ("task", "schedule", "time zone", "queue", "next run (UTC)"):
        table.add_column(column)
    now = datetime.now(UTC)
    for task in sorted(app.tasks.values(), key=lambda t: t.name):
        if task.options.cron:
            nxt = datetime.fromtimestamp(next_tick(task, now), UTC).isoformat(timespec="seconds")
            add_row(table, task.name, task.options.cron, task.options.tz, task.options.queue, nxt)
    console.print(table)


@main.command()
@click.argument("app_path", metavar="APP")
@click.option("--schema", is_flag=True, help="Print each task's argument JSON Schema (JSON).")
def tasks(app_path: str, schema: bool) -> None:
    """The tasks of APP: name, queue, and whether they can be enqueued over HTTP."""
    import json

    from .schema import task_schema

    app = load_app_or_exit(app_path)
    registered = sorted((t for t in app.tasks.values() if t.fn is not None), key=lambda t: t.name)
    if schema:
        click.echo(json.dumps({t.name: task_schema(t) for t in registered}, indent=2))
        return
    table = titled("tasks")
    for column in ("task", "queue", "over HTTP", "doc"):
        table.add_column(column)
    for task in registered:
        http = "yes" if task_schema(task) is not None else "no (positional-only)"
        doc = (task.__doc__ or "").strip().split("\n")[0]
        add_row(table, task.name, task.options.queue, http, doc)
    console.print(table)


@main.command()
@click.argument("app_path", metavar="APP")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--insecure",
    is_flag=True,
    help="Serve beyond this machine without credentials (TAREFA_DASHBOARD_TOKEN, or "
    "TAREFA_DASHBOARD_USER and TAREFA_DASHBOARD_PASSWORD).",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME",
    help="A name the dashboard is opened by, besides localhost, 127.0.0.1, [::1] and --host "
    "(repeat). Requests naming any other host get 400, so that no web page can use the "
    "dashboard through DNS rebinding. '*' allows any name: unsafe.",
)
def dashboard(
    app_path: str, host: str, port: int, insecure: bool, allowed_hosts: tuple[str, ...]
) -> None:
    """Serve the dashboard (/), the REST API (/api/v1, OpenAPI at /docs) and
    Prometheus metrics (/metrics) for APP's Redis."""
    try:
        # web.server imports uvicorn only as it serves: here, to fail before.
        import uvicorn  # noqa: F401

        from .web.server import serve
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in DASHBOARD_MODULES:
            raise
        raise click.ClickException(
            f"tarefa dashboard needs {exc.name}, which is not installed: "
            "pip install 'tarefa[dashboard]'"
        ) from None

    app = load_app_or_exit(app_path)
    try:
        serve(app, host, port, insecure=insecure, allowed_hosts=allowed_hosts)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


@main.command()
def demo() -> None:
    """Run a few hundred example jobs on a worker and show how they went."""
    from . import demo as demo_module

    try:
        demo_module.main(console)
    except EmbeddedError as exc:
        raise click.ClickException(str(exc)) from None


@main.group()
def embedded() -> None:
    """The private redis-server under ./.tarefa/ (used when TAREFA_URL is unset)."""


@embedded.command("status")
def embedded_status() -> None:
    """Is the embedded server running, and where."""
    server = Embedded.here()
    facts = server.info()
    if facts is None:
        console.print(plain(f"not running (it starts on first use, in {server.home})"))
        sys.exit(3)
    for key, value in facts.items():
        click.echo(f"{key}: {value}")


@embedded.command("stop")
@click.option("--force", is_flag=True, help="Stop it even while other clients are connected.")
def embedded_stop(force: bool) -> None:
    """Stop the embedded server; its data stays in ./.tarefa/ (AOF). Refused
    while other clients (workers, a dashboard, producers) are connected,
    unless --force."""
    server = Embedded.here()
    others = server.other_clients()
    if others and not force:
        commands = ", ".join(f"{cmd} x{n}" for cmd, n in sorted(Counter(others).items()))
        raise click.ClickException(
            f"{len(others)} other clients are connected to the embedded server in "
            f"{server.home} (their last commands: {commands}): stop them first, "
            "or add --force"
        )
    if server.stop():
        console.print("stopped")
    else:
        console.print("not running")


if __name__ == "__main__":  # pragma: no cover
    main()


# The operator's commands (info, jobs, job, retry, cancel, ...): cli_ops.py.
for command in COMMANDS:
    main.add_command(command)
main.add_command(relay)  # cli_relay.py
