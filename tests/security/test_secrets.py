"""The Redis password never shows: not in a worker's log through an outage,
not in the commands' output, not in the dashboard's or REST API's answers, not
in the errors producers get; in every form a URL can carry it."""

from __future__ import annotations

import traceback
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest
import redis
from fastapi.testclient import TestClient

from tarefa import App
from tarefa.store.connection import redacted
from tarefa.web.server import create_app

from ..waits import PATIENCE
from .conftest import PASSWORD, eventually, producer, stop, tarefa

API = "/api/v1"
FORMS = (PASSWORD, quote(PASSWORD, safe=""), quote(PASSWORD))  # as given, escaped


def assert_no_password(*texts: str) -> None:
    for text in texts:
        for form in FORMS:
            assert form not in text, f"the password shows in: {text[:500]}"


def query_url(port: int) -> str:
    """The password as a query argument, as redis-py also takes it."""
    return f"redis://127.0.0.1:{port}/0?password={quote(PASSWORD, safe='')}"


def test_a_worker_riding_out_an_outage_never_logs_the_password(server, spawn_worker):
    redis_server = server(password=PASSWORD)
    made = producer(redis_server.url)
    first = made.add.enqueue(1, 1)
    worker = spawn_worker(url=query_url(redis_server.port))
    assert first.result(timeout=PATIENCE) == 2
    redis_server.kill()
    eventually(
        lambda: worker.log_path.read_text().count("Redis error (ConnectionError") >= 2,
        what="the worker's reconnect warnings",
    )
    redis_server.start()  # same port and password; the worker reconnects
    assert made.add.enqueue(2, 2).result(timeout=PATIENCE) == 4
    log = stop(worker)
    assert "Redis: redis://127.0.0.1:" in log and "password=***" in log
    assert_no_password(log)


def run_all(*commands: list[str]) -> list:
    """Run ``tarefa`` commands at once: each is a Python process starting."""
    with ThreadPoolExecutor(len(commands)) as pool:
        return list(pool.map(lambda command: tarefa(*command), commands))


def test_the_commands_never_show_the_password(server):
    redis_server = server(password=PASSWORD, unix_socket=True)
    urls = [
        redis_server.url,
        query_url(redis_server.port),
        f"unix://{redis_server.socket}?password={quote(PASSWORD, safe='')}",
    ]
    producer(urls[0]).add.enqueue(1, 2)
    up = run_all(["info", "--url", urls[0]], ["info", "--json", "--url", urls[1]],
                 ["info", "--url", urls[2]])  # fmt: skip
    for out in up:
        assert out.returncode == 0, out.stderr
        assert "***" in out.stdout and "default" in out.stdout
    redis_server.kill()
    down = run_all(*(["info", "--url", url] for url in urls))
    for out in down:
        assert out.returncode == 4 and "cannot reach Redis at" in out.stderr
    assert_no_password(*(out.stdout + out.stderr for out in up + down))


def test_a_bad_url_is_refused_without_showing_the_password():
    out = tarefa("info", "--url", f"http://ops:{PASSWORD}@redis.internal:6379")
    assert out.returncode == 2 and "must start with redis://" in out.stderr
    assert_no_password(out.stdout, out.stderr)
    with pytest.raises(ValueError, match="must start with") as refused:
        App(f"http://ops:{PASSWORD}@redis.internal:6379")
    assert_no_password(str(refused.value))


def test_the_dashboard_and_api_never_show_the_password(server, spawn_worker):
    redis_server = server(password=PASSWORD)
    made = producer(redis_server.url)
    job = made.add.enqueue(1, 2)
    worker = spawn_worker(url=redis_server.url)
    assert job.result(timeout=PATIENCE) == 3
    reading_redis = ["/metrics", f"{API}/queues", f"{API}/jobs/{job.id}", f"{API}/health"]
    paths = [
        "/", "/openapi.json", f"{API}/tasks", f"{API}/cron", f"{API}/queues/default",
        f"{API}/queues/default/jobs?state=completed", f"{API}/workers", f"{API}/history",
        *reading_redis,
    ]  # fmt: skip
    with TestClient(create_app(made.app), base_url="http://localhost") as client:
        for path in paths:
            response = client.get(path)
            assert response.status_code == 200, path
            assert_no_password(response.text)
        stop(worker)
        redis_server.kill()
        for path in reading_redis:
            down = client.get(path)
            assert down.status_code == 503, path
            assert_no_password(down.text)
        paused = client.post(f"{API}/queues/default/pause")
        assert paused.status_code == 503
        assert "cannot reach Redis at redis://***@127.0.0.1:" in paused.json()["detail"]
        assert_no_password(paused.text)


@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{quote(PASSWORD, safe='')}@127.0.0.1:1/0",
        f"redis://ops:{quote(PASSWORD, safe='')}@127.0.0.1:1/0",
        f"redis://127.0.0.1:1/0?password={quote(PASSWORD, safe='')}",
        f"unix:///nonexistent/redis.sock?password={quote(PASSWORD, safe='')}",
    ],
)
def test_errors_raised_to_producers_never_show_the_password(url):
    made = producer(url)
    with pytest.raises(redis.ConnectionError) as failed:
        made.add.enqueue(1, 2)
    error = failed.value
    shown = [str(error), repr(error), "".join(traceback.format_exception(error))]
    shown.append(repr(made.app.store.clients.sync))  # a client, as a program may log it
    assert_no_password(*shown)
    made.app.close()


@pytest.mark.parametrize(
    "url, shown",
    [
        ("redis://:pw@host:6379/0", "redis://***@host:6379/0"),
        ("redis://pw@host:6379", "redis://***@host:6379"),  # a password without its ':'
        ("redis://ops:pw@host", "redis://ops:***@host"),
        ("redis://ops:p@w/rd@host:6379", "redis://ops:***@host:6379"),  # unescaped
        ("redis://:p?w@host", "redis://***@host"),
        ("redis://host:6379/0?password=pw&db=1", "redis://host:6379/0?password=***&db=1"),
        ("redis://host?db=1&Password=p@w", "redis://host?db=1&Password=***"),
        ("unix:///run/r.sock?password=pw", "unix:///run/r.sock?password=***"),
        (
            "rediss://h:6380?ssl_keyfile=/k.pem&ssl_password=pw&ssl_ca_certs=/ca.pem",
            "rediss://h:6380?ssl_keyfile=/k.pem&ssl_password=***&ssl_ca_certs=/ca.pem",
        ),
        ("redis://host:6379/0", "redis://host:6379/0"),
    ],
)
def test_redacted_hides_every_form_of_password(url, shown):
    assert redacted(url) == shown
