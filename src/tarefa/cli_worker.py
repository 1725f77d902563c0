"""Running workers from the command line: ``tarefa worker``'s one process,
or N of them under a supervisor (``-p N``, supervisor.py), each serving its
metrics on a port of its own."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from .app import App
from .cli_relay import relaying
from .store import REFUSED, describe_error

if TYPE_CHECKING:
    from .worker import Worker

log = logging.getLogger("tarefa.worker")


def parse_processes(text: str) -> int:
    """-p: an int >= 1, or auto (the CPUs this process may use)."""
    from .supervisor import cpu_count

    if text == "auto":
        return cpu_count()
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise ValueError(f"{text!r} is not a number of processes: give an int >= 1, or auto")
    return count


@dataclass(frozen=True)
class Metrics:
    """Where a worker serves its metrics (--metrics-host, --metrics-port)."""

    host: str
    port: int  # with -p N: worker process i's is port + i - 1
    allowed_hosts: tuple[str, ...]


def serve_metrics(w: Worker, metrics: Metrics | None, number: int = 1) -> None:
    """Serve the worker's metrics, if asked: worker process ``number`` of -p N
    on the port plus ``number - 1``."""
    if metrics is None:
        return
    from .metrics import serve_worker_metrics

    port = metrics.port + number - 1
    with _metrics_usage_errors(metrics.host, port):
        serve_worker_metrics(w, metrics.host, port, metrics.allowed_hosts)
    log.info("metrics: http://%s:%d/metrics", metrics.host, port)


def supervise(
    app: App, child: Callable[[int], int], processes: int, grace: float, metrics: Metrics | None
) -> int:
    """-p N, or --max-jobs-per-process: N worker processes forked from this
    one (supervisor.py); its exit status. What no child could get past is
    refused now, as the single path would: its settings (checked already),
    the app's include modules (imported here, once, for all), its metrics
    ports."""
    from .supervisor import Supervisor

    app.import_includes()
    if metrics is not None:
        _check_metrics_ports(metrics, processes)
    return Supervisor(processes, child, grace=grace).run()


def _check_metrics_ports(metrics: Metrics, processes: int) -> None:
    from .metrics import check_metrics_port

    last = metrics.port + processes - 1
    if last > 65535:
        raise click.UsageError(
            f"--metrics-port {metrics.port} for {processes} worker processes takes the ports up "
            f"to {last}: past 65535"
        )
    for port in range(metrics.port, last + 1):
        with _metrics_usage_errors(metrics.host, port):
            check_metrics_port(metrics.host, port, metrics.allowed_hosts)


@contextlib.contextmanager
def _metrics_usage_errors(host: str, port: int) -> Iterator[None]:
    try:
        yield
    except ValueError as exc:  # an allowed host that is no host name
        raise click.UsageError(str(exc)) from None
    except OSError as exc:
        raise click.UsageError(f"cannot serve metrics on {host}:{port}: {exc}") from None


def worker_process(
    make_worker: Callable[[], Worker],
    metrics: Metrics | None,
    url: str,
    burst: bool,
    outbox_url: str | None,
    number: int,
) -> int:
    """Worker process ``number`` of -p N, in the child the supervisor forked:
    a worker built and run as the single path's; its exit status, which tells
    the supervisor whether to replace it (supervisor.py)."""
    from .supervisor import FINISHED
    from .worker.waits import run

    w = make_worker()
    try:
        serve_metrics(w, metrics, number)
        with relaying(w.app, outbox_url):
            run(w.run())
    except click.UsageError as exc:  # its port was taken since the supervisor checked it
        log.error("worker process %d: %s", number, exc.message)
        return 1
    except REFUSED as exc:  # wrong credentials, or an ACL: it may be mended, so it is retried
        log.error("worker process %d: %s", number, describe_error(url, exc))
        return 1
    return FINISHED if burst and not w.retired else 0
