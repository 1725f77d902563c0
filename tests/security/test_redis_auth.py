"""Redis AUTH and ACL users: a password URL and a user with only the ACL that
tarefa documents run producers, workers and the dashboard; a wrong password or
a missing permission fails at once, clearly, and loses no job."""

from __future__ import annotations

import asyncio
import re
import shlex
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from tarefa import Group, JobFailed, JobState
from tarefa.store.acl import COMMANDS, KEY_PATTERN, acl_rule
from tarefa.store.browse import LISTED_STATES
from tarefa.web.server import create_app

from ..conftest import ROOT
from ..waits import PATIENCE
from .conftest import PASSWORD, eventually, producer, stop, tarefa

API = "/api/v1"
WRONG = "not-the-Pa55word"
ADMIN = "admin-Pa55"


def rule_without(user: str, command: str) -> str:
    rule = acl_rule(user, PASSWORD)
    assert f" +{command}" in rule
    return rule.replace(f" +{command}", "")


def test_a_password_in_the_url_works_end_to_end(server, spawn_worker):
    url = server(password=PASSWORD).url
    assert "%40" in url  # the password's '@', escaped as a URL needs
    made = producer(url)
    job = made.add.enqueue(2, 3)
    worker = spawn_worker(url=url)
    assert job.result(timeout=PATIENCE) == 5
    log = stop(worker)
    assert "Redis: redis://***@127.0.0.1:" in log


def test_a_wrong_or_missing_password_fails_clearly_and_never_shows_it(server, spawn_worker):
    redis_server = server(password=PASSWORD)
    urls = {WRONG: redis_server.url_for(password=WRONG), "": redis_server.url_for()}
    workers = {given: spawn_worker("--burst", url=url) for given, url in urls.items()}
    for given, url in urls.items():
        made = producer(url)
        with pytest.raises(redis.AuthenticationError) as refused:
            made.add.enqueue(1, 2)
        with pytest.raises(redis.AuthenticationError):  # not RedisUnavailable: no outage
            asyncio.run(made.add.aenqueue(1, 2))
        made.app.close()
        info = tarefa("info", "--url", url)
        assert info.returncode == 4
        assert "refused the credentials" in info.stderr
        assert workers[given].wait(PATIENCE) == 4  # at once: waiting does not mend a wrong password
        log = workers[given].log_path.read_text()
        assert "refused the credentials" in log and "Traceback" not in log
        for shown in (str(refused.value), info.stdout + info.stderr, log):
            assert PASSWORD not in shown
            assert not given or given not in shown
    assert redis_server.client().dbsize() == 0  # nothing was written


def test_the_documented_acl_runs_producers_workers_and_the_dashboard(server, spawn_worker):
    """Every kind of call, by a user with only tarefa's ACL; Redis denied none."""
    redis_server = server(password=ADMIN, users=[acl_rule("tarefa", PASSWORD)])
    url = redis_server.url_for("tarefa", PASSWORD)
    made = producer(url)
    add, app = made.add, made.app
    plain = add.enqueue(1, 2)
    chained = plain.then(add, 10, 10)
    members = [add.enqueue(i, i) for i in range(3)]
    callback = Group(members).then(made.merge, "sums")
    urgent = add.with_options(priority=5).enqueue(2, 2)
    keyed = add.with_options(queue="per-key", key="account-1").enqueue(3, 3)
    limited = add.with_options(queue="limited").enqueue(4, 4)  # rate-limited queue
    many = add.enqueue_many([(5, 5), (6, 6)])
    throttled = [add.with_options(throttle=60).enqueue(7, 7) for _ in range(2)]
    debounced = add.with_options(debounce=60).enqueue(8, 8)
    delayed = add.with_options(delay=600).enqueue(9, 9)
    progress = made.report_progress.enqueue(3)
    fails = made.always_fails.enqueue("boom")

    worker = spawn_worker(
        "-q", "default", "-q", "per-key", "-q", "limited", "-q", "cron-guard", url=url
    )  # fmt: skip
    assert [plain.result(20), chained.result(20), callback.result(20)] == [3, 20, "sums: [0, 2, 4]"]
    assert [j.result(20) for j in (urgent, keyed, limited, *many)] == [4, 6, 8, 10, 12]
    assert throttled[1].created is False and throttled[0].result(20) == 14
    assert progress.result(20) == 3 and progress.progress["value"] == 1
    with pytest.raises(JobFailed, match="boom"):
        fails.result(20)
    assert debounced.status is JobState.SCHEDULED and delayed.status is JobState.SCHEDULED
    # The worker schedules the cron tasks of the queues it serves.
    eventually(lambda: app.queue("cron-guard").counts()["scheduled"] == 2, what="cron schedules")

    with TestClient(create_app(app), base_url="http://localhost") as client:
        for path in (
            "/", "/metrics", f"{API}/queues", f"{API}/queues/default", f"{API}/history",
            f"{API}/queues/default/history", f"{API}/workers", f"{API}/health", f"{API}/tasks",
            f"{API}/cron", f"{API}/jobs/{plain.id}", f"{API}/jobs/{fails.id}",
            *(f"{API}/queues/default/jobs?state={state}" for state in LISTED_STATES),
        ):  # fmt: skip
            response = client.get(path)
            assert response.status_code == 200, (path, response.text)
        assert client.get(f"{API}/workers").json()[0]["queues"][0] == "default"
        # The operator's actions.
        assert client.post(f"{API}/jobs/{fails.id}/retry").status_code == 200
        with pytest.raises(JobFailed):
            fails.result(20)  # it ran again, and failed again
        assert client.post(f"{API}/queues/default/retry-failed").json()["retried"] == 1
        with pytest.raises(JobFailed):
            fails.result(20)
        assert client.delete(f"{API}/queues/default/failed").json()["deleted"] == 1
        assert client.post(f"{API}/jobs/{delayed.id}/cancel").status_code == 200
        assert client.delete(f"{API}/jobs/{debounced.id}").status_code == 200
        assert client.post(f"{API}/queues/limited/pause").status_code == 200
        assert client.post(f"{API}/queues/limited/resume").json()["was_paused"] is True
        assert client.post(f"{API}/queues/limited/purge").json()["deleted_keys"] > 0
        created = client.post(f"{API}/tasks/{add.name}/jobs", json={"args": {"a": 20, "b": 22}})
        assert app.job(created.json()["id"]).result(20) == 42
    assert tarefa("info", "--url", url).returncode == 0

    worker_log = stop(worker)  # its blocking wait for work ends at once (CLIENT UNBLOCK)
    assert "permission" not in worker_log.lower()
    # The job that failed for good is logged with its traceback; nothing else is.
    tracebacks = re.findall(r"Traceback \(most recent call last\):\n(?:  .*\n)+(\S.*)", worker_log)
    assert len(tracebacks) == worker_log.count("Traceback") > 0, worker_log
    assert set(tracebacks) == {"ValueError: boom"}, worker_log
    # Redis logs every command it denied: none but CLIENT SETINFO, which redis-py
    # sends on connecting and whose refusal it ignores (6.2 logs it as "client"),
    # and CONFIG GET and INFO, with which tarefa reads maxmemory-policy where it
    # may (else it says it could not: store/memory.py).
    log = redis_server.client().acl_log(count=100)
    ignored = ("client|setinfo", "client", "config|get", "config", "info")
    assert [entry for entry in log if entry["object"] not in ignored] == []
    assert "would not tell its maxmemory-policy" in worker_log


def test_a_user_without_a_command_tarefa_needs_gets_noperm_and_no_job_is_lost(server, spawn_worker):
    redis_server = server(
        password=ADMIN,
        users=[
            acl_rule("tarefa", PASSWORD),
            rule_without("no-scripts", "evalsha"),
            rule_without("no-registry", "sadd"),
            f"other-keys on >{PASSWORD} ~app:* +@all",
        ],
    )

    def url(user: str) -> str:
        return redis_server.url_for(user, PASSWORD)

    # A producer: refused at once, and nothing was enqueued.
    refusals = {"no-scripts": "'evalsha' command", "other-keys": "permissions to access"}
    for user, denied in refusals.items():
        made = producer(url(user))
        with pytest.raises(redis.exceptions.NoPermissionError, match=denied):
            made.add.enqueue(1, 2)
        made.app.close()
    assert redis_server.client().keys("tarefa:{default}:*") == []

    # The dashboard says why.
    made = producer(url("no-scripts"))
    with TestClient(create_app(made.app), base_url="http://localhost") as client:
        response = client.post(f"{API}/queues/default/pause")
        assert response.status_code == 503
        assert "denies a command tarefa needs" in response.json()["detail"]
        assert PASSWORD not in response.text

    # A worker: stops at start with the reason; the job waits for one that can run it.
    job = producer(url("tarefa")).add.enqueue(20, 22)
    denied_worker = spawn_worker("--burst", url=url("no-registry"))
    assert denied_worker.wait(PATIENCE) == 4
    log = denied_worker.log_path.read_text()
    assert "denies a command tarefa needs" in log and "'sadd' command" in log
    assert PASSWORD not in log
    assert job.status is JobState.QUEUED
    spawn_worker("--burst", url=url("tarefa"))
    assert job.result(20) == 42


def test_the_acl_has_every_command_the_lua_scripts_call():
    """A command a script calls and the ACL lacks would stop it half-way."""
    lua = Path(__import__("tarefa.store", fromlist=["x"]).__file__).parent / "lua"
    called = set()
    for path in lua.rglob("*.lua"):
        # redis.call('HSET', ...) and redis.call(front and 'RPUSH' or 'LPUSH', ...)
        for first_argument in re.findall(r"redis\.p?call\(([^,)]*)", path.read_text()):
            called.update(c.lower() for c in re.findall(r"'([A-Za-z]+)'", first_argument))
    assert called and called <= set(COMMANDS), sorted(called - set(COMMANDS))


def test_the_docs_give_the_acl_tarefa_needs():
    security = (ROOT / "docs" / "security.md").read_text()
    [command] = [
        line for line in re.findall(r"^ACL SETUSER .*$", security, re.MULTILINE)
    ]  # the one ACL SETUSER line of docs/security.md
    words = shlex.split(command)[2:]
    assert words == acl_rule("tarefa", "PASSWORD").split()
    assert KEY_PATTERN in words
