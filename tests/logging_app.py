"""An app that configures logging itself as its module is imported (as a
Django or Flask app does): its own handler and format, on stdout. A worker
must keep them: tarefa's lines go through this handler, once each."""

import logging.config

logging.config.dictConfig(
    {
        "version": 1,
        "disable_existing_loggers": False,  # else tarefa's loggers, imported already, go silent
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
