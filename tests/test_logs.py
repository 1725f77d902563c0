"""tarefa.logs in-process: when the command line's setup stands back, and the
job logger's lines. (The worker's own lines: tests/worker/test_logging.py.)"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from tarefa import logs
from tarefa.context import JobContext

from .conftest import PYTHONPATH
from .waits import PATIENCE


def in_fresh_process(code: str) -> str:
    """Run ``code`` after ``from tarefa import logs`` in a new interpreter (a
    logging configuration of its own, untouched by pytest's); its stdout."""
    out = subprocess.run(
        [sys.executable, "-c", "import logging\nfrom tarefa import logs\n" + code],
        capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=PYTHONPATH),
        timeout=PATIENCE,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_setup_adds_one_handler_when_nothing_is_configured():
    code = """
logging.getLogger("some.library").addHandler(logging.NullHandler())  # not a configuration
print(logs.setup("warning", "json"), len(logging.getLogger().handlers),
      logging.getLogger().level, logs.applied())
"""
    assert in_fresh_process(code) == "True 1 30 ('warning', 'json')"


@pytest.mark.parametrize("where", ["", "tarefa", "myapp"])
def test_setup_adds_nothing_over_an_apps_handler(where):
    code = f"""
logging.getLogger({where!r} or None).addHandler(logging.StreamHandler())
print(logs.setup("debug", "json"), len(logging.getLogger().handlers),
      logging.getLogger().level, logs.applied())
"""
    assert in_fresh_process(code) == f"False {0 if where else 1} 30 None"


@pytest.mark.parametrize(("level", "fmt"), [("loud", "text"), ("info", "xml"), ("INFO", "text")])
def test_setup_refuses_unknown_levels_and_formats(level, fmt):
    code = f"""
try:
    logs.setup({level!r}, {fmt!r})
except ValueError as exc:
    print(exc, len(logging.getLogger().handlers))
"""
    assert in_fresh_process(code).endswith(" 0") and "unknown log" in in_fresh_process(code)


def test_the_job_logger_names_the_job_in_any_format(caplog):
    job = JobContext("id%1", "emails", "shop:send", 2)
    with caplog.at_level(logging.INFO, logger="tarefa.job"):
        job.logger.info("sent %d of %s", 3, "4")
        job.logger.warning("100% done")
    first, second = caplog.records
    assert first.getMessage() == "job id%1 (shop:send): sent 3 of 4"
    assert second.getMessage() == "job id%1 (shop:send): 100% done"
    assert (first.job_id, first.task, first.queue, first.attempt) == (
        "id%1",
        "shop:send",
        "emails",
        2,
    )
    assert first.funcName == "test_the_job_logger_names_the_job_in_any_format"  # the caller's line
    line = json.loads(logs.formatter("json").format(first))
    assert line["job_id"] == "id%1" and line["logger"] == "tarefa.job" and line["level"] == "INFO"
    assert line["time"].endswith("+00:00") and line["message"].endswith("sent 3 of 4")
