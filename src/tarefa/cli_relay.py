"""``tarefa relay APP``: moves the jobs of the PostgreSQL outbox to Redis
(tarefa.outbox), until SIGTERM or SIGINT."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

import click

from . import logs
from .app import App
from .cli_ops import UsageExit, load_app_or_exit
from .outbox import Relay, install

log = logging.getLogger("tarefa.outbox")


@click.command()
@click.argument("app_path", metavar="APP")
@click.option(
    "--database-url",
    envvar="TAREFA_OUTBOX_URL",
    required=True,
    help="The PostgreSQL database of the outbox (postgresql://...); default: TAREFA_OUTBOX_URL.",
)
@click.option("--install", "install_table", is_flag=True, help="Create the outbox table first.")
@click.option("--batch", type=click.IntRange(min=1), default=500, show_default=True)
@click.option(
    "--poll",
    type=click.FloatRange(min=0, min_open=True),
    default=5.0,
    show_default=True,
    help="Seconds between looks at the table when no NOTIFY came (the safety net).",
)
def relay(app_path: str, database_url: str, install_table: bool, batch: int, poll: float) -> None:
    """Move the jobs APP's producers wrote into the outbox table to Redis."""
    try:
        import psycopg
    except ImportError:
        raise UsageExit("tarefa relay needs psycopg: pip install 'tarefa[postgres]'") from None
    logs.setup()
    app = load_app_or_exit(app_path)
    if install_table:
        try:
            with psycopg.connect(database_url) as db:
                install(db)
        except psycopg.Error as exc:
            raise click.ClickException(f"cannot create the outbox table: {exc}") from None
    relaying = Relay(app, database_url, batch=batch, poll=poll)

    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("outbox relay: %s, stopping", signal.Signals(signum).name)
        relaying.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("outbox relay: moving %s's outbox to Redis", app_path)
    relaying.run()
    log.info("outbox relay: stopped after %d jobs", relaying.relayed)


def outbox_url_or_exit() -> str:
    """TAREFA_OUTBOX_URL, for ``tarefa worker --relay-outbox``, with psycopg there."""
    url = os.environ.get("TAREFA_OUTBOX_URL")
    if not url:
        raise click.UsageError("--relay-outbox relays the database TAREFA_OUTBOX_URL names: set it")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise UsageExit("--relay-outbox needs psycopg: pip install 'tarefa[postgres]'") from None
    return url


@contextlib.contextmanager
def relaying(app: App, database_url: str | None) -> Iterator[None]:
    """Relay the outbox in a thread while the block runs (a worker), if a
    database is given."""
    if database_url is None:
        yield
        return
    relay = Relay(app, database_url)
    thread = threading.Thread(target=relay.run, name="tarefa-outbox-relay", daemon=True)
    thread.start()
    log.info("outbox relay: moving the outbox's jobs to Redis")
    try:
        yield
    finally:
        relay.stop()
        thread.join()
