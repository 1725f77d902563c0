"""The operator's commands: look at queues, jobs and workers, and act on them.

They need no APP, only Redis (``--url``, else TAREFA_URL, else the embedded
server). Each prints a table, or JSON with ``--json`` (the REST API's shapes),
and exits with a code a script can test:

    0  done
    1  the action did not apply (the job has ended, or has not failed)
    2  bad usage
    3  no such queue or job
    4  Redis cannot be reached
"""

from __future__ import annotations

import functools
import json
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console, RenderableType

from . import manage
from .app import App
from .cli_tables import job_table, jobs_table, memory_line, plain, queues_table, workers_table
from .durations import parse_duration
from .errors import AmbiguousJob, AppImportError, JobNotFound, TarefaError
from .loading import load_app
from .store import (
    CLEANABLE_STATES,
    LISTED_STATES,
    REDIS_ERRORS,
    EmbeddedError,
    describe_error,
    redacted,
)

console = Console(width=None if sys.stdout.isatty() else 200)

url_option = click.option(
    "--url", help="Redis URL (default: TAREFA_URL or TAREFA_URL_FILE, else the embedded one)."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
queue_option = click.option(
    "--queue",
    "-q",
    help="The job's queue (default: search them all; needed when the id is in several).",
)


T = TypeVar("T")


# The commands' errors, by exit code: what went wrong, for scripts.
class NotAppliedExit(click.ClickException):
    """The command could not do what was asked (a job that has ended...)."""

    exit_code = 1


class UsageExit(click.ClickException):
    """A value that does not fit, or an id that needs its queue."""

    exit_code = 2


class NotFoundExit(click.ClickException):
    """No such queue, job or task."""

    exit_code = 3


def load_app_or_exit(path: str) -> App:
    """The App at ``path`` (APP), or the exit that says why it cannot load."""
    try:
        return load_app(path)
    except AppImportError as exc:
        if exc.missing is None:  # the app's code raised: its traceback says where
            if exc.__cause__ is not None:
                traceback.print_exception(exc.__cause__)
        raise UsageExit(str(exc)) from None
    except (ImportError, ValueError, TypeError) as exc:
        raise click.BadParameter(str(exc), param_hint="APP") from None


class UnreachableExit(click.ClickException):
    """Redis cannot be used: down, refusing the credentials, or an ACL."""

    exit_code = 4


def operator_command(fn: Callable[..., None]) -> Callable[..., None]:
    """Open the App for ``--url`` and turn errors into messages and exit codes."""

    @functools.wraps(fn)
    def run(url: str | None, **kwargs: Any) -> None:
        app = None
        try:
            app = App(url)
            fn(app, **kwargs)
        except (manage.NotFound, JobNotFound) as exc:
            raise NotFoundExit(str(exc)) from None
        except AmbiguousJob as exc:
            raise UsageExit(str(exc)) from None
        except TarefaError as exc:
            raise NotAppliedExit(str(exc)) from None
        except (ValueError, EmbeddedError) as exc:
            raise UsageExit(str(exc)) from None
        except REDIS_ERRORS as exc:
            where = app.store.url if app is not None else url or ""
            raise UnreachableExit(describe_error(where, exc)) from None
        finally:
            if app is not None:
                app.close()

    return url_option(run)


def converted(
    parse: Callable[[str], T],
) -> Callable[[click.Context, click.Parameter, Any], T | None]:
    """An option's callback that converts its value with ``parse``: a
    ValueError is click's "Invalid value for '--option'" (exit 2)."""

    def convert(ctx: click.Context, param: click.Parameter, value: Any) -> T | None:
        try:
            return value if value is None else parse(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None

    return convert


def _print(data: Any, as_json: bool, table: Callable[[Any], RenderableType]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        console.print(table(data))


@click.command()
@click.option("--watch", type=click.FloatRange(0.1), help="Refresh every N seconds until Ctrl-C.")
@json_option
@operator_command
def info(app: App, watch: float | None, as_json: bool) -> None:
    """Queues with their job counts, and live workers."""

    def snapshot() -> dict[str, Any]:
        queues = [manage.queue_info(app, q) for q in app.queues()]
        return {
            "redis": redacted(app.store.url),
            "memory": manage.redis_memory(app),
            "queues": queues,
            "workers": manage.workers(app),
            "unserved_queues": manage.unserved_queues(app),
        }

    def show(data: dict[str, Any]) -> None:
        if as_json:
            click.echo(json.dumps(data, default=str))
            return
        console.print(plain(f"Redis: {data['redis']} ({memory_line(data['memory'])})"))
        for warning in data["memory"]["warnings"]:
            console.print(plain(f"WARNING: {warning}", style="bold red"))
        console.print(queues_table(data["queues"]))
        console.print(workers_table(data["workers"]))
        for queue in data["unserved_queues"]:
            warning = f"WARNING: queue {queue!r} has jobs ready and no live worker serving it"
            console.print(plain(warning, style="bold red"))

    if not watch:
        return show(snapshot())
    try:
        while True:
            data = snapshot()
            if not as_json:
                console.clear()
            show(data)
            time.sleep(watch)
    except KeyboardInterrupt:
        pass


@click.command()
@click.argument("queue")
@click.option("--state", "-s", type=click.Choice(LISTED_STATES), default="queued")
@click.option("--limit", type=click.IntRange(1, manage.MAX_PAGE), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0)
@click.option(
    "--search", default="", help="Only jobs whose id, task name or arguments contain this."
)
@json_option
@operator_command
def jobs(
    app: App, queue: str, state: str, limit: int, offset: int, search: str, as_json: bool
) -> None:
    """A page of QUEUE's jobs in one state."""
    manage.check_queue(app, queue)
    page = manage.list_jobs(app, queue, state, offset=offset, limit=limit, search=search)
    _print(page, as_json, jobs_table)


@click.command()
@click.argument("job_id", metavar="ID")
@queue_option
@json_option
@operator_command
def job(app: App, job_id: str, queue: str | None, as_json: bool) -> None:
    """Everything about one job."""
    _print(manage.job_detail(app, job_id, queue), as_json, job_table)


@click.command()
@click.argument("job_id", metavar="[ID]", required=False)
@queue_option
@click.option("--all-failed", "all_failed", metavar="QUEUE", help="Retry every failed job.")
@operator_command
def retry(app: App, job_id: str | None, queue: str | None, all_failed: str | None) -> None:
    """Run a failed job again (ID), or every failed job of a queue."""
    if all_failed and not job_id:
        retried = manage.retry_failed(app, manage.check_queue(app, all_failed))
        click.echo(f"{retried} failed jobs of {all_failed} queued again")
        return
    if not job_id or all_failed:
        raise ValueError("give a job ID or --all-failed QUEUE, not both")
    manage.job(app, job_id, queue).retry()
    click.echo(f"job {job_id} queued again")


@click.command()
@click.argument("job_id", metavar="ID")
@queue_option
@operator_command
def cancel(app: App, job_id: str, queue: str | None) -> None:
    """Cancel a job that has not ended."""
    found = manage.job(app, job_id, queue)
    if not found.cancel():
        raise TarefaError(f"job {job_id} has ended already ({found.status}); nothing to cancel")
    click.echo(f"job {job_id} cancelled")


@click.command("run-now")
@click.argument("job_id", metavar="ID")
@queue_option
@operator_command
def run_now(app: App, job_id: str, queue: str | None) -> None:
    """Run a scheduled job (a delay or a retry's back-off) as soon as a worker
    is free, not at its time."""
    manage.job(app, job_id, queue).run_now()
    click.echo(f"job {job_id} queued to run now")


@click.command()
@click.argument("job_id", metavar="ID")
@queue_option
@operator_command
def delete(app: App, job_id: str, queue: str | None) -> None:
    """Delete a job, whatever its state."""
    manage.job(app, job_id, queue).delete()
    click.echo(f"job {job_id} deleted")


@click.command()
@click.argument("queue")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@operator_command
def purge(app: App, queue: str, yes: bool) -> None:
    """Delete every job of QUEUE, in every state."""
    manage.check_queue(app, queue)
    if not yes:
        if not sys.stdin.isatty():
            raise ValueError("purge deletes every job of the queue: add --yes to confirm")
        click.confirm(f"Delete every job of {queue}?", abort=True)
    click.echo(f"{app.queue(queue).purge()} keys of {queue} deleted")


@click.command()
@click.argument("queue")
@click.option("--state", "-s", type=click.Choice(CLEANABLE_STATES), required=True)
@click.option(
    "--older-than", "older_than", metavar="AGE", required=True,
    callback=converted(lambda age: parse_duration(age, "--older-than")),
    help="How long ago the jobs ended: 30s, 15m, 2h, 7d, or seconds (0: every one).",
)  # fmt: skip
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@operator_command
def clean(app: App, queue: str, state: str, older_than: float, yes: bool) -> None:
    """Delete QUEUE's jobs in one ended state that ended long enough ago."""
    manage.check_queue(app, queue)
    what = f"the {state} jobs of {queue} that ended more than {older_than:g} s ago"
    if not yes:
        if not sys.stdin.isatty():
            raise ValueError(f"clean deletes {what}: add --yes to confirm (no terminal to ask on)")
        click.confirm(f"Delete {what}?", abort=True)
    deleted = manage.clean(app, queue, state, older_than)
    click.echo(f"{deleted} {state} jobs of {queue} deleted")


@click.command()
@click.argument("queue")
@operator_command
def pause(app: App, queue: str) -> None:
    """Workers stop taking jobs from QUEUE (running jobs finish)."""
    app.queue(manage.check_queue(app, queue)).pause()
    click.echo(f"{queue} paused")


@click.command()
@click.argument("queue")
@operator_command
def resume(app: App, queue: str) -> None:
    """Workers take jobs from QUEUE again."""
    was_paused = app.queue(manage.check_queue(app, queue)).resume()
    click.echo(f"{queue} resumed" if was_paused else f"{queue} was not paused")


@click.command()
@json_option
@operator_command
def workers(app: App, as_json: bool) -> None:
    """Live workers: host, pid, queues, concurrency, running jobs."""
    _print(manage.workers(app), as_json, workers_table)


COMMANDS = (info, jobs, job, retry, cancel, run_now, delete, purge, clean, pause, resume, workers)
