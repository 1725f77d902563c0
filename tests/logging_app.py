"""An app that configures logging itself as its module is imported (as a
Django or Flask app does): its own handler and format, on stdout. A worker
must keep them: tarefa's lines go through this handler, once each.

Its dictConfig keeps the default ``disable_existing_loggers=True``, which
turns off every logger created before it (tarefa's, imported already): the
worker's lines must still be logged."""

import logging.config

logging.config.dictConfig(
    {
        "version": 1,
        "formatters": {"app": {"format": "APP|%(levelname)s|%(name)s|%(message)s"}},
        "handlers": {
            "out": {
                "class": "logging.StreamHandler",
                "formatter": "app",
                "stream": "ext://sys.stdout",
            }
        },
        "root": {"level": "INFO", "handlers": ["out"]},
    }
)

from tests.tasks import app  # noqa: E402, F401
