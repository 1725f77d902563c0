"""Logging: what ``tarefa worker`` sets up, and the job's context on log lines.

tarefa logs through stdlib ``logging`` (``tarefa.worker``, ``tarefa.job``,
...). Its command line adds one handler, on the root logger, only when the
application configured none: an app whose import set up logging (a
``dictConfig``, a handler of its own) keeps its handlers, formats and levels,
and tarefa's lines go through them.

Job lines carry ``job_id``, ``task``, ``queue`` and ``attempt`` (and
``duration_ms``, ``error_type`` where they apply) as attributes of the
record: fields in JSON, ``extra`` for Sentry and other handlers; the message
says them too, for any format.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_applied: tuple[str, str] | None = None  # (level, format) setup() put in place


class _JsonLines(JsonFormatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message,
    then the record's extra fields (a job's), and the traceback if any."""

    def __init__(self) -> None:
        super().__init__(
            "{levelname}{name}{message}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger", "exc_info": "traceback"},
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["time"] = datetime.fromtimestamp(record.created, UTC).isoformat(
            timespec="milliseconds"
        )
        super().add_fields(log_data, record, message_dict)


def formatter(fmt: str) -> logging.Formatter:
    """The formatter of ``fmt``: "text" or "json"."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r}: expected one of {', '.join(FORMATS)}")
    return _JsonLines() if fmt == "json" else logging.Formatter(TEXT_FORMAT)


def app_configured_logging() -> bool:
    """Whether logging was set up before tarefa's turn: a handler on the root
    logger or on any other (a library's NullHandler aside)."""
    loggers = [logging.getLogger()] + [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    return any(
        not isinstance(handler, logging.NullHandler) for lg in loggers for handler in lg.handlers
    )


def setup(level: str = "info", fmt: str = "text") -> bool:
    """Log to stderr at ``level`` in ``fmt``, unless logging is configured
    already (by the application): then add nothing and change nothing.
    Returns whether it set logging up."""
    global _applied
    _turn_tarefa_loggers_back_on()
    handler = logging.StreamHandler()  # stderr
    handler.setFormatter(formatter(fmt))
    if level not in LEVELS:
        raise ValueError(f"unknown log level {level!r}: expected one of {', '.join(LEVELS)}")
    if app_configured_logging():
        return False
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(LEVELS[level])
    _applied = (level, fmt)
    return True


def _turn_tarefa_loggers_back_on() -> None:
    """A ``dictConfig`` in the app, with its default
    ``disable_existing_loggers=True``, turns off every logger created before
    it and not named in it: tarefa's, created as tarefa was imported. The app
    never chose that (naming them, or a level, is how it would): a worker that
    logs nothing is blind, so they are turned back on."""
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if (name == "tarefa" or name.startswith("tarefa.")) and isinstance(logger, logging.Logger):
            logger.disabled = False


def applied() -> tuple[str, str] | None:
    """The (level, format) ``setup`` put in place in this process, if it did:
    what a job's child process sets up the same way."""
    return _applied


def job_fields(
    job_id: str, task: str, queue: str, attempt: int | None, **more: Any
) -> dict[str, Any]:
    """The ``extra`` of a job line (attempt None: not known, left out)."""
    fields = {"job_id": job_id, "task": task, "queue": queue, **more}
    if attempt is not None:
        fields["attempt"] = attempt
    return fields


class JobLogger(logging.LoggerAdapter[logging.Logger]):
    """``current_job().logger``: each line names the job at the start of its
    message (so any format shows it) and carries the job's fields."""

    def __init__(self, logger: logging.Logger, job_id: str, task: str, queue: str, attempt: int):
        super().__init__(logger, job_fields(job_id, task, queue, attempt))
        self._prefix = f"job {job_id} ({task}): "

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        # The message is %-formatted with args (only if there are any).
        prefix = self._prefix.replace("%", "%%") if args else self._prefix
        kwargs["extra"] = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1  # the job's line, not this one
        self.logger.log(level, prefix + str(msg), *args, **kwargs)
