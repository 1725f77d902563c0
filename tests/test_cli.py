"""The ``tarefa`` command line, through its real entry point (subprocesses)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading

from tarefa import JobState, manage
from tarefa.worker import Worker

from .conftest import PYTHONPATH, ROOT
from .odd_names import MARKUP_NAME
from .tasks import add, always_fails, fails_saying, pid, pid_in_process, pid_in_thread, record
from .waits import PATIENCE, wait_until


def tarefa(*args: str, env: dict | None = None, cwd=ROOT, timeout=PATIENCE):
    env = dict(os.environ, PYTHONPATH=PYTHONPATH, **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "tarefa", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )


def test_help_lists_the_commands():
    out = tarefa("--help")
    assert out.returncode == 0
    for command in (
        "worker",
        "info",
        "jobs",
        "job",
        "retry",
        "cancel",
        "run-now",
        "purge",
        "workers",
        "cron",
        "tasks",
        "dashboard",
        "demo",
        "embedded",
    ):
        assert command in out.stdout


def test_worker_burst_runs_the_queues_and_exits_0(app):
    jobs = add.enqueue_many([(i, 1) for i in range(50)])
    record.with_options(queue="high").enqueue("h")
    out = tarefa("worker", "tests.tasks:app", "-q", "high", "-q", "default", "-c", "5", "--burst")
    assert out.returncode == 0, out.stderr
    assert [j.result(1) for j in jobs] == [i + 1 for i in range(50)]
    assert app.queue("high").counts()["completed"] == 1
    assert "stopped; 51 outcomes reported" in out.stderr


def test_worker_without_queues_serves_every_queue_its_tasks_name(app):
    from . import many_queues

    many_queues.app._store = None
    try:
        jobs = [many_queues.send.enqueue("a"), many_queues.report.enqueue("r"),
                many_queues.bounce.enqueue("b"), many_queues.plain.enqueue(7)]  # fmt: skip
    finally:
        many_queues.app.close()
    out = tarefa("worker", "tests.many_queues:app", "--burst")
    assert out.returncode == 0, out.stderr
    assert "queues emails,reports,default, concurrency" in out.stderr
    assert f"; Redis: {os.environ['TAREFA_URL']}" in out.stderr  # where it works, said at start
    assert [j.queue for j in jobs] == ["emails", "reports", "emails", "default"]
    assert all(app.queue(q).counts()["completed"] for q in ("emails", "reports", "default"))
    assert [app.job(j.id, queue=j.queue).result(1) for j in jobs] == [
        "sent to a", "report r", "bounced b", 7,
    ]  # fmt: skip


def test_worker_pool_process_runs_sync_tasks_in_child_processes(app):
    in_process = pid.enqueue_many([()] * 3)
    in_thread = pid_in_thread.enqueue()  # its own pool="thread" wins over the flag
    out = tarefa("worker", "tests.tasks:app", "--pool", "process", "-c", "2", "--burst")
    assert out.returncode == 0, out.stderr
    assert "concurrency 2, process pool, burst" in out.stderr
    worker_pid = in_thread.result(1)
    assert worker_pid != os.getpid()
    assert worker_pid not in {job.result(1) for job in in_process}
    out = tarefa("worker", "tests.tasks:app", "--pool", "fork", "--burst")
    assert out.returncode == 2 and "Invalid value for '--pool'" in out.stderr


def test_worker_with_a_bad_app_path_says_what_is_wrong(r):
    cases = {
        "nocolon": "expected 'package.module:app'",
        "tests.no_such_module:app": "No module named 'tests.no_such_module'",
        "tests.tasks:nothing": "has no attribute 'nothing'",
        "tests.tasks:add": "is a Task, not a tarefa App",
    }
    for path, message in cases.items():
        out = tarefa("worker", path, "--burst")
        assert out.returncode == 2, (path, out.stderr)
        assert message in out.stderr, (path, out.stderr)


def test_an_app_module_that_fails_to_import_says_why(r, tmp_path):
    shop = tmp_path / "shop"
    shop.mkdir()
    (shop / "__init__.py").write_text("")
    (shop / "jobs.py").write_text("from tarefa import App\nfrom shop import billing\napp = App()\n")
    (shop / "billing.py").write_text("import stripe_not_installed\n")
    (shop / "broken.py").write_text("from tarefa import App\napp = App()\nraise KeyError('DB')\n")
    for command in (["worker", "shop.jobs:app", "--burst"], ["tasks", "shop.jobs:app"]):
        missing = tarefa(*command, cwd=tmp_path)
        assert missing.returncode == 2, missing.stderr
        assert "Invalid value" not in missing.stderr
        assert "it needs the module 'stripe_not_installed'" in missing.stderr
        assert "shop.jobs -> shop.billing -> stripe_not_installed" in missing.stderr
    raised = tarefa("worker", "shop.broken:app", "--burst", cwd=tmp_path)
    assert raised.returncode == 2 and "Traceback (most recent call last)" in raised.stderr
    assert 'shop/broken.py", line 3, in <module>' in raised.stderr
    assert "Error: importing shop.broken raised KeyError: 'DB'" in raised.stderr
    not_there = tarefa("worker", "shop.nope:app", "--burst", cwd=tmp_path)
    assert not_there.returncode == 2 and "No module named 'shop.nope'" in not_there.stderr


def test_worker_with_bad_options_is_a_usage_error(r):
    assert tarefa("worker", "tests.tasks:app", "-c", "0").returncode == 2
    out = tarefa("worker", "tests.tasks:app", "-q", "bad queue", "--burst")
    assert out.returncode == 2 and "invalid queue name" in out.stderr


def test_worker_max_memory_takes_a_size(app):
    out = tarefa("worker", "tests.tasks:app", "--max-memory", "lots", "--burst")
    assert out.returncode == 2
    assert "Invalid value for '--max-memory': not a size: 'lots' (say 512M or 2G)" in out.stderr
    job = pid_in_process.enqueue()
    out = tarefa("worker", "tests.tasks:app", "--max-memory", "512M", "--burst")
    assert out.returncode == 0, out.stderr
    assert "max memory 512 MiB per job process" in out.stderr
    assert job.result(1) > 0


def test_info_shows_queues_and_counts(app, run_worker):
    add.enqueue_many([(1, 1)] * 3)
    always_fails.with_options(queue="mail").enqueue("x")
    run_worker(["mail"])
    out = tarefa("info")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in lines if "│ " in line]
    row = {c[0]: c[1:] for c in cells}
    # queued, waiting, scheduled, active, completed, failed, oldest ready, ever completed / failed
    assert row["default"][:6] == ["3", "0", "0", "0", "0", "0"]
    assert row["default"][6].endswith(" s") and row["default"][7] == "0 / 0"
    assert row["mail"] == ["0", "0", "0", "0", "0", "1", "", "0 / 1"]
    assert "workers" in out.stdout
    info = json.loads(tarefa("info", "--json").stdout)
    counts = {q["name"]: q["counts"] for q in info["queues"]}
    assert counts["default"]["queued"] == 3 and counts["mail"]["failed"] == 1
    # default's jobs are ready and no worker serves it (mail has nothing ready).
    warnings = [line for line in lines if line.startswith("WARNING")]
    assert warnings == ["WARNING: queue 'default' has jobs ready and no live worker serving it"]
    assert info["unserved_queues"] == ["default"]


def test_info_with_redis_unreachable_fails_clearly():
    out = tarefa("info", "--url", "redis://:secret@127.0.0.1:1/0")
    assert out.returncode == 4
    assert "cannot reach Redis at redis://***@127.0.0.1:1/0" in out.stderr
    assert "secret" not in out.stderr + out.stdout


def test_a_bad_tarefa_url_is_a_usage_error(r):
    for args in (["info"], ["worker", "tests.tasks:app", "--burst"]):
        out = tarefa(*args, env={"TAREFA_URL": "localhost:6379"})
        assert out.returncode == 2, out.stderr
        assert "TAREFA_URL must start with redis://" in out.stderr
        assert "Traceback" not in out.stderr


def test_the_url_can_come_from_a_file_as_a_mounted_secret(app, tmp_path):
    job = add.enqueue(2, 3)
    secret = tmp_path / "tarefa-url"
    secret.write_text(os.environ["TAREFA_URL"] + "\n")  # as `echo URL > file` writes it
    env = {"TAREFA_URL": "", "TAREFA_URL_FILE": str(secret)}
    out = tarefa("worker", "tests.tasks:app", "--burst", env=env)
    assert out.returncode == 0, out.stderr
    assert f"; Redis: {os.environ['TAREFA_URL']}" in out.stderr
    assert job.result(timeout=PATIENCE) == 5


def test_a_bad_tarefa_url_file_is_a_usage_error(r, tmp_path):
    empty, wrong = tmp_path / "empty", tmp_path / "wrong"
    empty.write_text("\n")
    wrong.write_text("tarefa:secret@host:6379\n")  # the scheme forgotten
    cases = [
        ({"TAREFA_URL_FILE": str(tmp_path / "missing")}, "No such file or directory"),
        ({"TAREFA_URL_FILE": str(empty)}, f"{empty} holds no URL"),
        ({"TAREFA_URL_FILE": str(wrong)}, f"the URL in TAREFA_URL_FILE ({wrong}) must start"),
        ({"TAREFA_URL_FILE": str(empty), "TAREFA_URL": "redis://h"}, "not both"),
    ]
    for env, said in cases:
        out = tarefa("worker", "tests.tasks:app", "--burst", env={"TAREFA_URL": "", **env})
        assert out.returncode == 2, out.stderr
        assert said in out.stderr
        assert "Traceback" not in out.stderr
        assert "secret" not in out.stderr


def test_cron_lists_schedules_with_their_next_run(r):
    out = tarefa("cron", "tests.tasks:app")
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if "tests.tasks:" in line]
    assert any("hourly" in row and "0 * * * *" in row and "America/Sao_Paulo" in row
               for row in rows)  # fmt: skip
    assert any("every_second" in row for row in rows)
    assert tarefa("cron", "tests.tasks:nothing").returncode == 2


def test_demo_runs_its_jobs_and_shows_the_counts(app, tmp_path):
    out = tarefa("demo", cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "enqueued 300 jobs" in out.stdout
    assert "demo.documents" in out.stdout
    assert "dead-letter" in out.stdout and "not a valid PDF page" in out.stdout
    counts = {q: app.queue(q).counts() for q in ("demo.emails", "demo.documents")}
    assert counts["demo.emails"]["completed"] == 150
    assert counts["demo.documents"]["failed"] == 1
    failed = app.queue("demo.documents").failed_jobs()[0]
    assert failed.status is JobState.FAILED and failed.attempts == 3


def test_tasks_lists_them_and_prints_their_schemas():
    out = tarefa("tasks", "tests.tasks:app")
    assert out.returncode == 0 and "tests.tasks:add" in out.stdout
    schemas = json.loads(tarefa("tasks", "tests.tasks:app", "--schema").stdout)
    assert schemas["tests.tasks:add"]["properties"]["b"]["type"] == "integer"


def test_dashboard_refuses_a_public_address_without_credentials():
    env = {"TAREFA_DASHBOARD_TOKEN": "", "TAREFA_DASHBOARD_USER": ""}
    out = tarefa("dashboard", "tests.tasks:app", "--host", "0.0.0.0", env=env)
    assert out.returncode == 2 and "without credentials" in out.stderr


def test_operator_commands_act_on_jobs_with_exit_codes_for_scripts(app, run_worker):
    bad = always_fails.with_options(retries=0).enqueue("boom")
    run_worker()
    page = json.loads(tarefa("jobs", "default", "--state", "failed", "--json").stdout)
    assert [j["id"] for j in page["jobs"]] == [bad.id] and page["total"] == 1
    assert bad.id in tarefa("jobs", "default", "-s", "failed").stdout
    detail = tarefa("job", bad.id)
    assert detail.returncode == 0 and "boom" in detail.stdout and "Traceback" in detail.stdout
    assert json.loads(tarefa("job", bad.id, "--json").stdout)["args"] == ["boom"]

    assert tarefa("retry", bad.id).returncode == 0
    assert bad.status is JobState.QUEUED
    again = tarefa("retry", bad.id)
    assert again.returncode == 1 and "only a failed job" in again.stderr
    assert tarefa("cancel", bad.id).returncode == 0
    assert tarefa("cancel", bad.id).returncode == 1  # it has ended: nothing to cancel
    assert tarefa("delete", bad.id).returncode == 0
    missing = tarefa("job", bad.id)
    assert missing.returncode == 3 and "no job" in missing.stderr
    assert tarefa("retry").returncode == 2  # neither an ID nor --all-failed


def test_an_id_in_two_queues_needs_its_queue(app):
    for queue in ("default", "mail"):
        add.with_options(job_id="same", queue=queue, delay=600).enqueue(1, 1)
    record.with_options(queue="reports").enqueue("r")  # a queue without the job
    for command in (["job"], ["retry"], ["run-now"], ["cancel"], ["delete"]):
        refused = tarefa(*command, "same")
        assert refused.returncode == 2, (command, refused.stderr)
        assert "job 'same' is in 2 queues ('default', 'mail')" in refused.stderr
        assert "--queue" in refused.stderr
        for queue in ("nope", "reports"):
            missing = tarefa(*command, "same", "--queue", queue)
            assert missing.returncode == 3
            assert f"Error: no job 'same' in queue '{queue}'\n" in missing.stderr
    shown = json.loads(tarefa("job", "same", "--queue", "mail", "--json").stdout)
    assert shown["queue"] == "mail"
    ran = tarefa("run-now", "same", "--queue", "mail")
    assert ran.returncode == 0 and ran.stdout == "job same queued to run now\n"
    assert app.job("same", queue="mail").status is JobState.QUEUED
    again = tarefa("run-now", "same", "--queue", "mail")  # not scheduled any more
    assert again.returncode == 1 and "only a scheduled job can run now" in again.stderr
    assert tarefa("cancel", "same", "-q", "mail").returncode == 0
    assert app.job("same", queue="default").status is JobState.SCHEDULED
    assert tarefa("delete", "same", "--queue", "mail").returncode == 0
    assert json.loads(tarefa("job", "same", "--json").stdout)["queue"] == "default"


def test_jobs_lists_cancelled_ones_and_searches_arguments(app):
    gone = record.enqueue("cus_42")
    gone.cancel()
    waiting = record.enqueue("cus_43")
    page = json.loads(tarefa("jobs", "default", "--state", "cancelled", "--json").stdout)
    assert [j["id"] for j in page["jobs"]] == [gone.id] and page["complete"] is True
    assert gone.id in tarefa("jobs", "default", "-s", "cancelled").stdout
    found = json.loads(tarefa("jobs", "default", "--search", "cus_43", "--json").stdout)
    assert [j["id"] for j in found["jobs"]] == [waiting.id]
    bad = tarefa("jobs", "default", "--state", "canceled")
    assert bad.returncode == 2 and "'cancelled'" in bad.stderr
    assert tarefa("jobs", "nope", "--state", "cancelled").returncode == 3


def test_not_found_messages_close_their_quotes(app):
    missing = tarefa("job", "nope")
    assert missing.returncode == 3 and missing.stderr == "Error: no job 'nope'\n"
    assert tarefa("jobs", "nowhere").stderr == "Error: no queue 'nowhere'\n"


def test_info_shows_the_maxmemory_policy_warns_of_eviction_and_counts_lost_jobs(app, run_worker, r):
    jobs = add.enqueue_many([(1, 1)] * 2)
    r.delete(f"tarefa:{{default}}:job:{jobs[0].id}")  # as a Redis that evicts keys would
    run_worker()
    safe = tarefa("info")
    assert "(maxmemory-policy noeviction, " in safe.stdout and "WARNING" not in safe.stdout
    assert "1 / 0 (1 lost)" in safe.stdout
    r.config_set("maxmemory-policy", "allkeys-lru")
    try:
        out = tarefa("info")
        shown = json.loads(tarefa("info", "--json").stdout)
    finally:
        r.config_set("maxmemory-policy", "noeviction")
    assert "(maxmemory-policy allkeys-lru, " in out.stdout
    assert "WARNING: Redis's maxmemory-policy is allkeys-lru" in out.stdout
    assert shown["memory"]["policy"] == "allkeys-lru" and len(shown["memory"]["warnings"]) == 1
    assert shown["queues"][0]["totals"]["lost"] == 1


def test_job_shows_a_completed_job_without_its_arguments(app, run_worker):
    done = add.enqueue(2, 3)
    run_worker()
    detail = tarefa("job", done.id)
    assert detail.returncode == 0 and "completed" in detail.stdout and "args" not in detail.stdout
    shown = json.loads(tarefa("job", done.id, "--json").stdout)
    assert (shown["args"], shown["result"]) == (None, 5)


def test_operator_commands_on_queues(app, run_worker):
    for i in range(2):
        always_fails.with_options(retries=0).enqueue(f"e{i}")
    run_worker()
    out = tarefa("retry", "--all-failed", "default")
    assert out.returncode == 0 and "2 failed jobs" in out.stdout
    assert app.queue("default").counts()["queued"] == 2
    assert tarefa("pause", "default").returncode == 0 and app.queue("default").paused
    assert tarefa("resume", "default").returncode == 0 and not app.queue("default").paused
    refused = tarefa("purge", "default")  # no terminal to confirm on
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert app.queue("default").counts()["queued"] == 2
    assert tarefa("purge", "default", "--yes").returncode == 0
    assert app.queue("default").counts()["queued"] == 0
    for args in (["pause", "nope"], ["jobs", "nope"], ["purge", "nope", "--yes"]):
        assert tarefa(*args).returncode == 3
    assert json.loads(tarefa("workers", "--json").stdout) == []


# What rich would read as markup ("[/x]" closes no tag: it raised MarkupError)
# or as an emoji code, and a control sequence that clears a terminal.
MARKUP = "[/x] [bold]loud[/bold] :smile:"
CLEAR = "\x1b[2J"


def test_operator_commands_show_names_and_messages_as_they_are(app, run_worker):
    queue, job_id, key = "odd:smile:", "id[/x][bold]:smile:", "[/k]"
    fails_saying.with_options(queue=queue, job_id=job_id, key=key).enqueue(MARKUP + CLEAR)
    by_name = app.by_name("nowhere[/x]:[bold]task", queue=queue).enqueue()
    run_worker([queue])
    said = f"{MARKUP}\\x1b[2J"  # the control character shown, not sent to the terminal

    def shown(*args: str) -> str:
        out = tarefa(*args)
        assert out.returncode == 0, out.stderr
        assert "\x1b" not in out.stdout
        return out.stdout

    listed = shown("jobs", queue, "-s", "failed")
    assert f"{queue}: failed jobs 1-2 of 2" in listed
    for text in (job_id, "tests.tasks:fails_saying", f"ValueError: {said}", by_name.id,
                 "nowhere[/x]:[bold]task"):  # fmt: skip
        assert text in listed, text
    detail = shown("job", job_id)
    for text in (f"job {job_id}", f"'message': '{MARKUP}\\x1b[2J'", f"ValueError: {said}", key):
        assert text in detail, text

    worker = Worker(app, [queue], name="w[/x][bold]:smile:")
    thread = threading.Thread(target=asyncio.run, args=(worker.run(),), name="worker (run)")
    thread.start()
    try:
        wait_until(lambda: manage.workers(app) or not thread.is_alive(), "the worker to register")
        assert thread.is_alive(), "the worker ended"
        assert "w[/x][bold]:smile:" in shown("workers")
        info = shown("info")
        assert "w[/x][bold]:smile:" in info and queue in info
    finally:
        worker.stop()
        thread.join(PATIENCE)

    tasks = shown("tasks", "tests.odd_names:app")
    assert MARKUP_NAME in tasks and "Says [/x] and [bold]loud[/bold] :smile:." in tasks
    cron = shown("cron", "tests.odd_names:app")
    assert MARKUP_NAME in cron and queue in cron
