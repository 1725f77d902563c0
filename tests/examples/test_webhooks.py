"""examples/webhooks, run for real: signed webhooks over HTTP (TestClient),
a real Redis, and `tarefa worker examples.webhooks.tasks:app` as a process."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from examples.webhooks import tasks
from examples.webhooks.app import api, sign
from tarefa import JobState

from ..waits import wait_until

SECRET = "whsec_test"
ADMIN = {"authorization": "Bearer admin-token"}


@pytest.fixture
def client(r, tmp_path, monkeypatch):
    # Set before the worker is spawned: it inherits them.
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("ADMIN_TOKEN", "admin-token")
    monkeypatch.setenv("WEBHOOKS_DB", str(tmp_path / "webhooks.db"))
    # Fresh clients on the flushed Redis: a store remembers the queues it
    # registered there (as the suite's `app` fixture does for tests.tasks).
    tasks.app._store = None
    with TestClient(api) as client:
        yield client


@pytest.fixture
def worker(spawn_worker):
    """Starts `tarefa worker examples.webhooks.tasks:app -q webhooks ARGS`."""
    return lambda *args: spawn_worker("-q", "webhooks", *args, app="examples.webhooks.tasks:app")


def post(client, event: dict | bytes, secret: str = SECRET, **headers):
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    headers.setdefault("x-signature", sign(body, secret))
    return client.post("/webhooks", content=body, headers=headers)


def event(event_id: str, event_type: str = "payment.succeeded", **data) -> dict:
    return {"id": event_id, "type": event_type, "data": {"email": "ana@example.com", **data}}


def done(event_id: str) -> bool:
    return tasks.app.job(event_id).status is JobState.COMPLETED


def test_a_signed_webhook_is_answered_before_its_work_then_processed_by_the_worker(client, worker):
    answer = post(client, event("evt_1"))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"received": True, "job": "evt_1", "duplicate": False}
    # Answered with the work still to do: no worker runs yet.
    assert tasks.app.job("evt_1").status is JobState.QUEUED

    worker()
    wait_until(lambda: done("evt_1"), "evt_1 processed")
    assert tasks.actions("evt_1") == [
        ("evt_1", "email to ana@example.com"),
        ("evt_1", "crm updated"),
        ("evt_1", "notified #sales of payment.succeeded"),
    ]


def test_a_bad_or_missing_signature_is_refused_and_nothing_is_enqueued(client):
    assert post(client, event("evt_2"), secret="someone-else").status_code == 401
    body = json.dumps(event("evt_2")).encode()
    assert client.post("/webhooks", content=body).status_code == 401
    assert tasks.app.queue("webhooks").counts()["queued"] == 0
    assert tasks.actions() == []


def test_malformed_json_is_a_400(client):
    for body in (b"{not json", b"[1, 2]", b'{"type": "payment.succeeded"}', b"\xff"):
        assert post(client, body).status_code == 400, body
    assert tasks.app.queue("webhooks").counts()["queued"] == 0


def test_an_event_delivered_twice_is_processed_once(client, worker):
    first = post(client, event("evt_3"))
    again = post(client, event("evt_3"))
    assert first.json()["duplicate"] is False and again.json()["duplicate"] is True
    worker()
    wait_until(lambda: done("evt_3"), "evt_3 processed")
    # ...and once more after it ran: the completed job is kept, nothing new is added.
    assert post(client, event("evt_3")).json()["duplicate"] is True
    assert tasks.app.queue("webhooks").counts()["queued"] == 0
    assert len(tasks.actions("evt_3")) == 3
    assert tasks.app.job("evt_3").attempts == 1


def test_a_payment_is_taken_before_an_event_enqueued_earlier(client, worker):
    post(client, event("evt_customer", "customer.created"))
    post(client, event("evt_payment", "payment.failed"))
    worker("-c", "1")  # one job at a time: the order shows
    wait_until(lambda: done("evt_customer") and done("evt_payment"), "both processed")
    assert [event_id for event_id, _ in tasks.actions()] == [
        "evt_payment",
        "evt_payment",
        "evt_customer",
    ]


def test_a_failing_step_is_retried_with_back_off(client, worker):
    post(client, event("evt_4", crm_down_for=1))  # the CRM fails the first attempt
    worker()
    wait_until(lambda: done("evt_4"), "evt_4 processed")
    job = tasks.app.job("evt_4")
    assert job.attempts == 2
    assert len(tasks.actions("evt_4")) == 3  # the e-mail sent before the failure: once


def test_the_dashboard_needs_the_admin_token(client):
    post(client, event("evt_5"))
    assert client.get("/admin/queues/").status_code == 401
    assert client.get("/admin/queues/api/v1/queues").status_code == 401
    wrong = {"authorization": "Bearer guess"}
    assert client.get("/admin/queues/api/v1/queues", headers=wrong).status_code == 401
    assert "<title>tarefa</title>" in client.get("/admin/queues/", headers=ADMIN).text
    queues = client.get("/admin/queues/api/v1/queues", headers=ADMIN).json()
    assert [(q["name"], q["counts"]["queued"]) for q in queues] == [("webhooks", 1)]
    job = client.get("/admin/queues/api/v1/jobs/evt_5", headers=ADMIN).json()
    assert job["task"] == "examples.webhooks.tasks:process_event"
