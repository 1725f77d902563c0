"""What a ``tarefa worker`` logs: retries (WARNING) and jobs that fail for good
(ERROR, with the traceback) by default; each start and end with ``-v``; lost
leases, discarded outcomes, recoveries and hand-backs with the reason Redis
gave; text or JSON lines; and an app's own logging configuration kept.
Real ``tarefa worker`` subprocesses on the suite's Redis."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess

import pytest

from tarefa import JobState
from tarefa.store import Store

from .. import tasks
from ..processes import stopped
from ..test_cli import tarefa
from ..waits import PATIENCE, wait_for_list, wait_until
from .test_recovery import log_of

TEXT_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) "
)


def ended(proc: subprocess.Popen, *signals: int) -> str:
    """Its log once it exited (0), after ``signals``."""
    for signum in signals:
        proc.send_signal(signum)
    assert proc.wait(timeout=PATIENCE) == 0, log_of(proc)
    return log_of(proc)


def records(log: str) -> list[dict]:
    """Every line of a --log-format json log, parsed: one object per line."""
    return [json.loads(line) for line in log.splitlines()]


def levels(lines: list[str]) -> list[str]:
    return [m.group(1) for line in lines if (m := TEXT_LINE.match(line))]


def failing_jobs():
    """One job retried twice then failed (always_fails: retries=2), one failed
    at once (fails_saying: retries=0), one that completes."""
    return (
        tasks.always_fails.enqueue("boom"),
        tasks.fails_saying.enqueue("bad"),
        tasks.add.enqueue(1, 2),
    )


def test_by_default_retries_warn_and_failures_are_errors_with_their_traceback(app, spawn_worker):
    retried, failed, done = failing_jobs()
    log = ended(spawn_worker("--burst"))
    lines = log.splitlines()
    name = f"job {retried.id} (tests.tasks:always_fails) of queue default"
    for attempt in (1, 2):
        retry = f"WARNING tarefa.worker: {name}: attempt {attempt} of 3 failed: ValueError: boom; "
        assert sum(retry in line and "retrying in 0." in line for line in lines) == 1, log
    gave_up = [i for i, line in enumerate(lines) if "ERROR tarefa.worker:" in line]
    assert len(gave_up) == 2, log
    assert any(
        f"{name} failed for good at attempt 3 of 3: ValueError: boom; it is in the failed "
        "(dead-letter) set" in lines[i] for i in gave_up
    ), log  # fmt: skip
    assert any(f"job {failed.id} (tests.tasks:fails_saying)" in lines[i] for i in gave_up), log
    for i in gave_up:  # the traceback follows, as stored with the job
        assert lines[i + 1] == "Traceback (most recent call last):", log
    assert "Traceback" not in "".join(line for line in lines if "WARNING" in line)
    assert done.id not in log and "started" not in log  # no line per job without -v
    assert "DEBUG" not in levels(lines)


def test_json_lines_carry_the_job_fields(app, spawn_worker):
    retried, failed, done = failing_jobs()
    log = ended(spawn_worker("--burst", "--log-format", "json"))
    lines = records(log)  # each line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    warnings = [line for line in lines if line["level"] == "WARNING"]
    assert [(w["job_id"], w["attempt"]) for w in warnings] == [(retried.id, 1), (retried.id, 2)]
    for w in warnings:
        assert w["task"] == "tests.tasks:always_fails" and w["queue"] == "default"
        assert w["error_type"] == "ValueError" and w["duration_ms"] >= 0
        assert w["logger"] == "tarefa.worker" and "traceback" not in w
    errors = {line["job_id"]: line for line in lines if line["level"] == "ERROR"}
    assert set(errors) == {retried.id, failed.id}
    assert errors[failed.id]["attempt"] == 1 and errors[retried.id]["attempt"] == 3
    for error in errors.values():
        assert error["error_type"] == "ValueError"
        assert error["traceback"].startswith("Traceback (most recent call last):")
        assert error["traceback"].endswith(("ValueError: boom", "ValueError: bad"))
    assert not any(line.get("job_id") == done.id for line in lines)


def test_verbose_adds_a_line_as_each_job_starts_and_ends(app, spawn_worker):
    retried, failed, done = failing_jobs()
    log = ended(spawn_worker("--burst", "-v", "--log-format", "json"))
    info = [line for line in records(log) if line["level"] == "INFO" and "job_id" in line]
    started = [(line["job_id"], line["attempt"]) for line in info if "started" in line["message"]]
    assert sorted(started) == sorted(
        [(retried.id, 1), (retried.id, 2), (retried.id, 3), (failed.id, 1), (done.id, 1)]
    )
    ends = {(line["job_id"], line["attempt"]): line for line in info if "duration_ms" in line}
    assert set(ends) == set(started)
    assert ends[done.id, 1]["outcome"] == "completed" and ends[done.id, 1]["duration_ms"] >= 0
    assert ends[done.id, 1]["task"] == "tests.tasks:add" and ends[done.id, 1]["queue"] == "default"
    assert ends[retried.id, 1]["outcome"] == "retry" and ends[failed.id, 1]["outcome"] == "failed"
    assert "DEBUG" not in {line["level"] for line in records(log)}  # -v is not debug


def test_verbose_text_lines(app, spawn_worker):
    done = tasks.add.enqueue(1, 2)
    log = ended(spawn_worker("--burst", "-v"))
    name = f"job {done.id} (tests.tasks:add) of queue default"
    assert f"INFO tarefa.worker: {name}: attempt 1 started" in log
    assert re.search(
        rf"INFO tarefa.worker: {re.escape(name)}: attempt 1 completed in \d+\.\d{{3}} s", log
    )


def test_log_level_debug_shows_the_libraries_debug_lines_and_warning_hides_info(app, spawn_worker):
    tasks.add.enqueue(1, 2)
    debug = ended(spawn_worker("--burst", "--log-level", "debug")).splitlines()
    assert "DEBUG" in levels(debug)
    assert any(" DEBUG asyncio: " in line for line in debug), debug
    tasks.fails_saying.enqueue("bad")
    quiet = ended(spawn_worker("--burst", "--log-level", "warning"))
    assert set(levels(quiet.splitlines())) == {"ERROR"}, quiet


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_lines_a_job_writes_through_its_logger_name_the_job(app, spawn_worker, fmt):
    in_thread = tasks.says.enqueue("hello")
    in_process = tasks.says_in_process.enqueue("hi")
    log = ended(spawn_worker("--burst", "--log-format", fmt))
    for job, task, said in [(in_thread, "says", "hello"), (in_process, "says_in_process", "hi")]:
        assert job.status is JobState.COMPLETED
        message = f"job {job.id} (tests.tasks:{task}): it says {said}"
        if fmt == "text":
            assert f"INFO tarefa.job: {message}" in log, log
            continue
        (line,) = [line for line in records(log) if line["logger"] == "tarefa.job"
                   and line["job_id"] == job.id]  # fmt: skip
        assert line["message"] == message and line["task"] == f"tests.tasks:{task}"
        assert (line["queue"], line["attempt"], line["level"]) == ("default", 1, "INFO")


def run_until_its_lease_is_lost(app, r, spawn_worker, change: str, tag: str):
    """A sync job (it cannot be interrupted) loses its lease as it runs, then
    ends and reports its outcome: both are logged with the reason."""
    job = tasks.hold.enqueue(tag)
    w = spawn_worker("--lease", "1", "-c", "1", "--log-format", "json")
    wait_for_list(r, "test:started", 1)
    if change == "cancelled":
        job.cancel()
    elif change == "deleted":
        job.delete()
    else:  # its lease runs out and another worker recovers it
        # Stopped meanwhile: its heartbeat would renew the lease, or its own
        # housekeeping recover the job, between these two calls.
        w.send_signal(signal.SIGSTOP)
        try:
            wait_until(lambda: stopped(w.pid), "the worker to stop")
            r.zadd("tarefa:{default}:active", {job.id: 0})
            other = Store(app.store.url)  # another worker's recovery
            assert asyncio.run(other.recover("default", max_stalls=3)).count == 1
        finally:
            w.send_signal(signal.SIGCONT)
    wait_until(lambda: "lease lost" in log_of(w), "the heartbeat to find the lease lost")
    r.rpush(f"test:release:{tag}", "go", "go")  # ends; a recovered one runs again, and ends
    wait_until(lambda: "outcome discarded" in log_of(w), "the outcome to be discarded")
    return job, records(ended(w, signal.SIGTERM))


@pytest.mark.parametrize(
    ("change", "level", "because"),
    [
        ("cancelled", "INFO", "the job was cancelled"),
        ("deleted", "WARNING", "the job was deleted"),
        ("taken_over", "WARNING", "its lease had run out and the job was taken over"),
    ],
)
def test_a_lost_lease_and_its_discarded_outcome_say_the_true_reason(
    app, r, spawn_worker, change, level, because
):
    job, lines = run_until_its_lease_is_lost(app, r, spawn_worker, change, f"lost-{change}")
    lost = [line for line in lines if "lease lost" in line["message"]]
    discarded = [line for line in lines if "outcome discarded" in line["message"]]
    assert len(lost) == 1 and len(discarded) == 1, lines
    for line in lost + discarded:
        assert (line["job_id"], line["task"], line["attempt"]) == (job.id, "tests.tasks:hold", 1)
        assert (line["level"], line["reason"]) == (level, change)
        assert because in line["message"]
    assert "(attempt 1, completed)" in discarded[0]["message"]
    text = "".join(line["message"] for line in lines)
    assert "taken over" not in text or change == "taken_over"


def test_a_recovered_job_names_the_worker_that_stopped(app, r, spawn_worker):
    job = tasks.hold.enqueue("orphan")
    dead = spawn_worker("--lease", "1")
    wait_for_list(r, "test:started", 1)
    (dead_id,) = [w.decode() for w in r.smembers("tarefa:workers")]
    dead.send_signal(signal.SIGKILL)
    dead.wait(PATIENCE)
    w = spawn_worker("--lease", "1", "--log-format", "json")
    wait_until(lambda: "recovered" in log_of(w), "another worker to recover the job")
    wait_for_list(r, "test:started", 1)  # it runs again...
    r.rpush("test:release:orphan", "go", "go")  # ...and ends (the first thread is gone)
    wait_until(lambda: job.status is JobState.COMPLETED, "the job to complete")
    (line,) = [line for line in records(ended(w, signal.SIGTERM)) if "recovered" in line["message"]]
    assert (line["level"], line["job_id"], line["task"]) == ("WARNING", job.id, "tests.tasks:hold")
    assert (line["reason"], line["worker"], line["stalls"]) == ("lease_expired", dead_id, 1)
    assert f"worker {dead_id} having stopped renewing it" in line["message"]


def test_a_job_handed_back_at_shutdown_says_so(app, r, spawn_worker):
    job = tasks.hold.enqueue("slow")
    w = spawn_worker("--grace", "0", "--log-format", "json")
    wait_for_list(r, "test:started", 1)
    lines = records(ended(w, signal.SIGTERM))
    r.rpush("test:release:slow", "go")  # the thread still holds it; let it end
    (line,) = [line for line in lines if "handed back" in line["message"]]
    assert (line["level"], line["job_id"], line["reason"]) == ("WARNING", job.id, "stopping")
    assert "the worker stopped before it ended (attempt 1 not counted)" in line["message"]
    assert job.status is JobState.QUEUED


@pytest.mark.parametrize("options", [(), ("-v",), ("--log-format", "json", "--log-level", "debug")])
def test_an_app_that_configured_logging_keeps_it(app, spawn_worker, options):
    retried, failed, done = failing_jobs()
    log = ended(spawn_worker("--burst", *options, app="tests.logging_app:app"))
    lines = log.splitlines()
    # Every line of tarefa's goes through the app's handler, in its format, once.
    assert not any(TEXT_LINE.match(line) or line.startswith("{") for line in lines), log
    failed_lines = [line for line in lines if line.startswith("APP|ERROR|tarefa.worker|")]
    assert len(failed_lines) == 2, log
    assert sum(f"job {failed.id} " in line for line in failed_lines) == 1
    assert log.count("Traceback (most recent call last)") == 2  # one per failed job
    assert sum(line.startswith("APP|WARNING|tarefa.worker|") for line in lines) == 2
    started = [line for line in lines if line.startswith("APP|INFO|tarefa.worker|job ")]
    assert len(started) == (10 if "-v" in options else 0)  # 5 attempts, a start and an end each
    if "--log-format" in options:
        assert "logging is configured by the app: --log-level and --log-format not applied" in log
        assert not any(line.startswith("APP|DEBUG|") for line in lines)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--log-format", "xml"], "Invalid value for '--log-format': 'xml' is not one of"),
        (["--log-format", ""], "Invalid value for '--log-format'"),
        (["--log-level", "loud"], "Invalid value for '--log-level': 'loud' is not one of"),
        (["--log-level", "10"], "Invalid value for '--log-level'"),
        (["--log-level"], "Option '--log-level' requires an argument"),
        (["-v", "--log-level", "warning"], "-v logs each job at INFO"),
        (["-v", "--log-level", "error"], "-v logs each job at INFO"),
    ],
)
def test_bad_logging_options_are_usage_errors(r, options, message):
    out = tarefa("worker", "tests.tasks:app", "--burst", *options)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr


def test_log_options_take_any_case(app):
    out = tarefa("worker", "tests.tasks:app", "--burst", "--log-level", "WARNING",
                 "--log-format", "JSON")  # fmt: skip
    assert out.returncode == 0 and out.stderr == "", out.stderr  # nothing at WARNING or above
