"""``tarefa relay APP``: moves the jobs of the PostgreSQL outbox to Redis
(tarefa.outbox), until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
from types import FrameType

import click

from . import logs
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
