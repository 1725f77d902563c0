"""The REST API against a real Redis: every endpoint, unknown ids, bad bodies,
Redis going away."""

from __future__ import annotations

import asyncio
import base64
import time
from datetime import UTC, datetime
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient

from tarefa import App, JobState
from tarefa.web.server import Credentials, check_bind, create_app

from ..tasks import add, always_fails, record
from ..waits import wait_until

API = "/api/v1"


@pytest.fixture
def client(app):
    with TestClient(create_app(app), base_url="http://localhost") as client:
        yield client


def test_queues_list_counts_and_rq_shaped_fields(client, app):
    assert client.get(f"{API}/queues").json() == []
    add.enqueue(1, 2)
    add.with_options(delay=60).enqueue(1, 2)
    [info] = client.get(f"{API}/queues").json()
    assert info["name"] == "default" and info["paused"] is False
    assert info["counts"]["queued"] == 1 and info["counts"]["scheduled"] == 1
    assert info["length"] == 1 and info["scheduled_count"] == 1 and info["failed_count"] == 0
    assert 0 <= info["oldest_ready_age"] < 60
    assert client.get(f"{API}/queues/default").json()["counts"] == info["counts"]
    missing = client.get(f"{API}/queues/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]


def test_jobs_page_in_the_order_workers_take_them(client):
    ids = [record.enqueue(f"t{i}").id for i in range(5)]
    page = client.get(f"{API}/queues/default/jobs", params={"offset": 1, "limit": 2}).json()
    assert page["total"] == 5 and [j["id"] for j in page["jobs"]] == ids[1:3]
    assert page["jobs"][0]["task"] == "tests.tasks:record"
    assert page["jobs"][0]["state"] == "queued"
    prioritized = record.with_options(priority=1).enqueue("p").id
    everything = client.get(f"{API}/queues/default/jobs", params={"limit": 10}).json()
    assert [j["id"] for j in everything["jobs"]] == [*ids, prioritized]


def test_jobs_search_by_id_and_task(client):
    job = add.enqueue(1, 2)
    record.enqueue("x")
    by_task = client.get(f"{API}/queues/default/jobs", params={"search": "tasks:add"}).json()
    assert [j["id"] for j in by_task["jobs"]] == [job.id]
    by_id = client.get(f"{API}/queues/default/jobs", params={"search": job.id[5:15]}).json()
    assert [j["id"] for j in by_id["jobs"]] == [job.id]


def test_jobs_search_in_the_arguments(client, app):
    wanted = record.enqueue("cus_42")
    record.enqueue("cus_7")
    keyword = app.by_name("tests.tasks:deliver").enqueue(tag="t", body="for cus_42 too")
    cancelled = record.enqueue("cus_42 again")
    cancelled.cancel()
    found = client.get(f"{API}/queues/default/jobs", params={"search": "cus_42"}).json()
    assert [j["id"] for j in found["jobs"]] == [wanted.id, keyword.id] and found["total"] == 2
    params = {"search": "cus_42", "state": "cancelled"}
    in_cancelled = client.get(f"{API}/queues/default/jobs", params=params).json()
    assert [j["id"] for j in in_cancelled["jobs"]] == [cancelled.id]
    nothing = client.get(f"{API}/queues/default/jobs", params={"search": "cus_9"}).json()
    assert nothing["total"] == 0 and nothing["jobs"] == []


def test_cancelled_jobs_are_listed_newest_first(client, app, r, monkeypatch):
    from tarefa.store import cancelled

    first, second, kept = (record.enqueue(t) for t in ("a", "b", "c"))
    first.cancel()
    second.cancel()
    finished = int(r.hget(f"tarefa:{{default}}:job:{second.id}", "finished_at"))
    r.hset(f"tarefa:{{default}}:job:{first.id}", "finished_at", finished - 1000)  # a second apart
    # A record as an earlier release (or a cancelled dependant) leaves it.
    r.hset("tarefa:{default}:job:old", mapping={"task": record.name, "state": "cancelled"})
    record.with_options(queue="default2").enqueue("x").cancel()  # another queue's
    page = client.get(f"{API}/queues/default/jobs", params={"state": "cancelled"}).json()
    assert [j["id"] for j in page["jobs"]] == [second.id, first.id, "old"]
    assert page["total"] == 3 and page["complete"] is True
    assert all(j["state"] == "cancelled" for j in page["jobs"])
    paged = client.get(f"{API}/queues/default/jobs", params={"state": "cancelled", "offset": 1})
    assert [j["id"] for j in paged.json()["jobs"]] == [first.id, "old"]
    other = client.get(f"{API}/queues/default2/jobs", params={"state": "cancelled"}).json()
    assert other["total"] == 1
    monkeypatch.setattr(cancelled, "SCAN_KEYS", 2)  # looks through 2 of the 4 job records
    bounded = client.get(f"{API}/queues/default/jobs", params={"state": "cancelled"}).json()
    assert bounded["complete"] is False and bounded["total"] <= 2
    monkeypatch.setattr(cancelled, "SCAN_KEYS", 10_000)
    monkeypatch.setattr(cancelled, "SCAN_COUNT", 1)  # each call looks at about one key...
    monkeypatch.setattr(cancelled, "SCAN_CALLS", 1)  # ... and one call is all it may make
    one_call = client.get(f"{API}/queues/default/jobs", params={"state": "cancelled"}).json()
    assert one_call["complete"] is False
    assert kept.status is JobState.QUEUED


@pytest.mark.parametrize(
    "params",
    [{"state": "nope"}, {"state": "CANCELLED"}, {"limit": 0}, {"limit": 10_000}, {"offset": -1}],
)
def test_jobs_refuses_bad_paging(client, params):
    add.enqueue(1, 2)
    response = client.get(f"{API}/queues/default/jobs", params=params)
    assert response.status_code == 422


def test_job_detail_with_arguments_result_and_error(client, run_worker):
    ok = add.with_options(job_id="sum").enqueue(2, 3)
    bad = always_fails.with_options(retries=0).enqueue("boom")
    queued = client.get(f"{API}/jobs/sum").json()
    assert queued["args"] == [2, 3] and queued["kwargs"] == {} and queued["state"] == "queued"
    run_worker()
    done = client.get(f"{API}/jobs/{ok.id}", params={"queue": "default"}).json()
    assert done["state"] == "completed" and done["result"] == 5 and done["attempts"] == 1
    assert done["worker"] and done["started_at"] and done["finished_at"]
    assert done["args"] is None and done["kwargs"] is None  # not kept once completed
    failed = client.get(f"{API}/jobs/{bad.id}").json()
    assert failed["state"] == "failed" and failed["error"]["message"] == "boom"
    assert "Traceback" in failed["error"]["traceback"]
    assert client.get(f"{API}/jobs/ghost").status_code == 404
    assert client.get(f"{API}/jobs/sum", params={"queue": "other"}).status_code == 404


def test_a_completed_job_recorded_by_an_earlier_release_shows_its_arguments(client, r):
    """Before completed jobs dropped their inputs, they kept them: such a
    record, still in Redis during a deploy, reads as it did."""
    add.enqueue(0, 0)  # the queue is known
    r.hset("tarefa:{default}:job:old", mapping={
        "state": "completed", "task": "tests.tasks:add", "payload": b"[[2,3],{}]",
        "options": b'{"timeout": 5}', "enqueued_at": 1, "started_at": 2, "finished_at": 3,
        "attempts": 1, "worker": "w", "lease": 1, "result": b"5",
    })  # fmt: skip
    old = client.get(f"{API}/jobs/old").json()
    assert (old["args"], old["kwargs"], old["result"]) == ([2, 3], {}, 5)
    assert old["options"] == {"timeout": 5}


def test_retry_cancel_and_delete_one_job(client, app, run_worker):
    bad = always_fails.with_options(retries=0).enqueue("boom")
    run_worker()
    assert client.post(f"{API}/jobs/{bad.id}/retry").json()["state"] == "queued"
    assert bad.status is JobState.QUEUED
    again = client.post(f"{API}/jobs/{bad.id}/retry")
    assert again.status_code == 409 and "only a failed job" in again.json()["detail"]

    waiting = add.with_options(delay=60).enqueue(1, 1)
    assert client.post(f"{API}/jobs/{waiting.id}/cancel").json()["state"] == "cancelled"
    assert waiting.status is JobState.CANCELLED
    assert client.post(f"{API}/jobs/{waiting.id}/cancel").status_code == 409

    assert client.delete(f"{API}/jobs/{bad.id}").json()["deleted"] is True
    assert client.get(f"{API}/jobs/{bad.id}").status_code == 404
    assert client.delete(f"{API}/jobs/{bad.id}").status_code == 404
    assert client.post(f"{API}/jobs/ghost/cancel").status_code == 404


def test_run_a_scheduled_job_now(client, app, run_worker):
    later = add.with_options(delay=600).enqueue(2, 3)
    page = client.get(f"{API}/queues/default/jobs", params={"state": "scheduled"}).json()
    due = datetime.fromisoformat(page["jobs"][0]["run_at"])
    assert 590 < (due - datetime.now(UTC)).total_seconds() <= 600
    assert client.get(f"{API}/jobs/{later.id}").json()["run_at"] == page["jobs"][0]["run_at"]

    ran = client.post(f"{API}/jobs/{later.id}/run-now", params={"queue": "default"})
    assert ran.json() == {"id": later.id, "queue": "default", "state": "queued"}
    assert later.status is JobState.QUEUED
    assert "run_at" not in client.get(f"{API}/jobs/{later.id}").json()
    run_worker()
    assert later.result(timeout=0) == 5

    again = client.post(f"{API}/jobs/{later.id}/run-now")
    assert again.status_code == 409 and "only a scheduled job" in again.json()["detail"]
    assert later.status is JobState.COMPLETED
    assert client.post(f"{API}/jobs/ghost/run-now").status_code == 404
    assert (
        client.post(f"{API}/jobs/{later.id}/run-now", params={"queue": "nope"}).status_code == 404
    )
    assert client.get(f"{API}/jobs/{later.id}/run-now").status_code == 404  # a POST only


# Ids are opaque strings: some look like paths, escapes, dot segments, or a
# URL's query and fragment; some end like the routes that act on a job.
ODD_IDS = ["a/b", "a%2Fb", "..", ".", "a/../b", "café ☕/日本", "a b", "a?b=c", "a#b", "x/cancel",
           "/lead", "trail/", "a//b", "%"]  # fmt: skip


def job_path(job_id: str) -> str:
    """The id as one path segment. "." and ".." go percent-encoded, as the
    URL standard would drop them as dot segments (httpx does too)."""
    if job_id in (".", ".."):
        return job_id.replace(".", "%2E")
    return quote(job_id, safe="")


@pytest.mark.parametrize("job_id", ODD_IDS)
def test_every_job_route_takes_any_id(server, app, run_worker, job_id):
    with httpx.Client(base_url=server) as client:
        check_any_id(client, app, run_worker, job_id)


def check_any_id(client, app, run_worker, job_id: str) -> None:
    path = f"{API}/jobs/{job_path(job_id)}"
    add.with_options(job_id="a").enqueue(1, 1)  # a job the odd ids must not reach
    later = add.with_options(delay=600, job_id=job_id).enqueue(1, 1)
    got = client.get(path)
    assert got.status_code == 200, got.text
    assert got.json()["id"] == job_id and got.json()["state"] == "scheduled"
    assert client.get(path, params={"queue": "default"}).json()["id"] == job_id
    cancelled = client.post(f"{path}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json() == {"id": job_id, "queue": "default", "state": "cancelled"}
    assert later.status is JobState.CANCELLED and app.job("a").status is JobState.QUEUED
    assert client.delete(path).json() == {"id": job_id, "queue": "default", "deleted": True}
    assert client.get(path).status_code == 404 and app.job("a").status is JobState.QUEUED

    failed = always_fails.with_options(job_id=job_id, retries=0, queue="odd").enqueue("x")
    run_worker(["odd"])
    retried = client.post(f"{path}/retry", params={"queue": "odd"})
    assert retried.json() == {"id": job_id, "queue": "odd", "state": "queued"}
    assert failed.status is JobState.QUEUED


def test_deleting_a_parent_cancels_the_jobs_waiting_for_it(client):
    parent = add.with_options(delay=60).enqueue(1, 1)
    child = parent.then(record, "after")
    assert child.status is JobState.WAITING
    client.delete(f"{API}/jobs/{parent.id}")
    assert child.status is JobState.CANCELLED
    assert child.error["type"] == "DependencyFailed"


def test_queue_actions(client, app, run_worker):
    for i in range(3):
        always_fails.with_options(retries=0).enqueue(f"e{i}")
    run_worker()
    assert client.post(f"{API}/queues/default/retry-failed").json()["retried"] == 3
    assert app.queue("default").counts()["queued"] == 3
    run_worker()
    assert client.delete(f"{API}/queues/default/failed").json()["deleted"] == 3
    assert app.queue("default").counts()["failed"] == 0

    assert client.post(f"{API}/queues/default/pause").json()["paused"] is True
    assert client.get(f"{API}/queues/default").json()["paused"] is True
    assert client.post(f"{API}/queues/default/resume").json()["was_paused"] is True
    add.enqueue(1, 2)
    assert client.post(f"{API}/queues/default/purge").json()["deleted_keys"] > 0
    assert app.queue("default").counts()["queued"] == 0
    for path in ("pause", "resume", "purge", "retry-failed"):
        assert client.post(f"{API}/queues/nope/{path}").status_code == 404
    assert client.delete(f"{API}/queues/nope/failed").status_code == 404


def test_workers_lists_a_live_worker(client, spawn_worker, r):
    proc = spawn_worker("-q", "default", "-c", "3")

    def registered() -> list:
        assert proc.poll() is None, "the worker exited"
        return client.get(f"{API}/workers").json()

    [worker] = wait_until(registered, "the worker to register")
    assert worker["pid"] == proc.pid and worker["queues"] == ["default"]
    assert worker["concurrency"] == 3 and worker["running"] == 0 and worker["host"]


def _serve(app, *queues: str) -> None:
    """List a live worker serving ``queues`` (as a worker's start registers)."""
    info = {"host": "h", "pid": 1, "queues": ",".join(queues), "concurrency": 1}
    asyncio.run(app.store.register_worker(f"w-{'-'.join(queues)}", info, 60_000))


def test_health_reports_late_queues_with_503(client, app, r):
    assert client.get(f"{API}/health").json() == {
        "ok": True, "redis": "ok", "workers": 0, "oldest_ready_age": {}, "late_queues": [],
        "unserved_queues": [], "maxmemory_policy": "noeviction", "warnings": [],
    }  # fmt: skip
    _serve(app, "default")
    job = add.enqueue(1, 2)
    r.hset(f"tarefa:{{default}}:job:{job.id}", "enqueued_at", int(time.time() * 1000) - 120_000)
    late = client.get(f"{API}/health", params={"max_ready_age": 60})
    assert late.status_code == 503 and late.json()["late_queues"] == ["default"]
    assert client.get(f"{API}/health", params={"max_ready_age": 600}).status_code == 200
    assert client.get(f"{API}/health", params={"max_ready_age": -1}).status_code == 422


def test_health_is_503_for_a_queue_with_ready_jobs_and_no_worker(client, app):
    add.with_options(delay=600).enqueue(1, 2)  # scheduled only: nothing to run yet
    record.with_options(queue="paused").enqueue("p")
    app.queue("paused").pause()  # its jobs wait by choice
    assert client.get(f"{API}/health").status_code == 200
    record.with_options(queue="mail").enqueue("m")
    add.enqueue(1, 2)
    _serve(app, "mail", "other")
    unhealthy = client.get(f"{API}/health")
    body = unhealthy.json()
    assert unhealthy.status_code == 503 and body["ok"] is False
    assert body["unserved_queues"] == ["default"] and body["workers"] == 1
    _serve(app, "default")
    assert client.get(f"{API}/health").status_code == 200


def test_an_id_in_two_queues_is_never_picked_silently(client, app):
    """Ids are unique per queue: without ?queue= the API refuses (409) and
    names the queues; with it, it acts on that queue's job only."""
    for queue in ("default", "mail"):
        add.with_options(job_id="same", queue=queue, delay=600).enqueue(1, 1)
    record.with_options(queue="reports").enqueue("r")  # a queue without the job
    routes = [("GET", ""), ("POST", "/cancel"), ("POST", "/retry"), ("DELETE", "")]
    for method, action in routes:
        refused = client.request(method, f"{API}/jobs/same{action}")
        assert refused.status_code == 409, (method, action)
        assert refused.json()["queues"] == ["default", "mail"]
        assert "'default', 'mail'" in refused.json()["detail"]
        for queue in ("nope", "reports"):
            missing = client.request(method, f"{API}/jobs/same{action}", params={"queue": queue})
            assert missing.status_code == 404 and queue in missing.json()["detail"]
    assert client.get(f"{API}/jobs/same", params={"queue": "mail"}).json()["queue"] == "mail"
    cancelled = client.post(f"{API}/jobs/same/cancel", params={"queue": "mail"})
    assert cancelled.json() == {"id": "same", "queue": "mail", "state": "cancelled"}
    assert app.job("same", queue="default").status is JobState.SCHEDULED
    deleted = client.delete(f"{API}/jobs/same", params={"queue": "mail"})
    assert deleted.status_code == 200
    # One left: found without ?queue= again.
    assert client.get(f"{API}/jobs/same").json()["queue"] == "default"


def test_health_warns_of_a_redis_that_evicts_jobs(client, r):
    """allkeys-lru (common on a shared Redis) deletes jobs when memory is
    full: a warning, not a 503 (a setting for a person to change)."""
    r.config_set("maxmemory-policy", "allkeys-lru")
    try:
        health = client.get(f"{API}/health")
    finally:
        r.config_set("maxmemory-policy", "noeviction")
    body = health.json()
    assert health.status_code == 200 and body["ok"] and body["maxmemory_policy"] == "allkeys-lru"
    (warning,) = body["warnings"]
    assert "maxmemory-policy is allkeys-lru" in warning and "noeviction" in warning


def test_redis_unreachable_gives_503_with_the_reason(redis_url):
    dead = App("redis://127.0.0.1:1/0")
    with TestClient(create_app(dead), base_url="http://localhost") as client:
        queues = client.get(f"{API}/queues")
        assert queues.status_code == 503 and "cannot reach Redis" in queues.json()["detail"]
        health = client.get(f"{API}/health")
        assert health.status_code == 503 and health.json()["redis"] == "unreachable"
        for path in (f"{API}/history", "/metrics"):
            assert client.get(path).status_code == 503
    dead.close()


# -- tasks: schema and enqueue over HTTP ---------------------------------------------


def test_tasks_publish_a_schema_from_the_signature(client):
    tasks = {t["name"]: t for t in client.get(f"{API}/tasks").json()}
    schema = tasks["tests.tasks:add"]["schema"]
    assert schema["properties"]["a"]["type"] == "integer"
    assert sorted(schema["required"]) == ["a", "b"]
    assert tasks["tests.tasks:hold"]["schema"]["properties"]["timeout"]["default"] == 30
    assert client.get(f"{API}/tasks/tests.tasks:nope").status_code == 404
    assert "/api/v1/tasks/{name}/jobs" in client.get("/openapi.json").json()["paths"]


def test_enqueue_over_http_runs_the_job(client, app, run_worker):
    body = {"args": {"a": 2, "b": 40}, "options": {"job_id": "http-1"}}
    created = client.post(f"{API}/tasks/tests.tasks:add/jobs", json=body)
    assert created.status_code == 201
    assert created.json() == {
        "id": "http-1", "queue": "default", "task": "tests.tasks:add", "created": True
    }  # fmt: skip
    again = client.post(f"{API}/tasks/tests.tasks:add/jobs", json=body)
    assert again.json()["created"] is False  # a retried request makes no second job
    run_worker()
    assert app.job("http-1").result(timeout=0) == 42
    delayed = {"args": {"tag": "x"}, "options": {"delay": 60, "priority": 3}}
    job_id = client.post(f"{API}/tasks/tests.tasks:hold/jobs", json=delayed).json()["id"]
    assert app.job(job_id).status is JobState.SCHEDULED


@pytest.mark.parametrize(
    "body, where",
    [
        ({"args": {"a": "2", "b": 1}}, ["a"]),  # a str for an int: no silent coercion
        ({"args": {"a": 1}}, ["b"]),
        ({"args": {"a": 1, "b": 2, "c": 3}}, ["c"]),
        ({"args": {"a": 1.5, "b": 2}}, ["a"]),
    ],
)
def test_enqueue_refuses_arguments_that_do_not_match(client, app, body, where):
    response = client.post(f"{API}/tasks/tests.tasks:add/jobs", json=body)
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["errors"]] == [where]
    assert app.queues() == []  # nothing was enqueued


@pytest.mark.parametrize(
    "body",
    [
        {"args": [1, 2]},
        {"args": {"a": 1, "b": 2}, "options": {"delay": -1}},
        {"args": {"a": 1, "b": 2}, "options": {"queue_name": "x"}},
        {"args": {"a": 1, "b": 2}, "extra": True},
    ],
)
def test_enqueue_refuses_malformed_bodies(client, app, body):
    assert client.post(f"{API}/tasks/tests.tasks:add/jobs", json=body).status_code == 422
    assert app.queues() == []


def test_enqueue_refuses_non_json_and_unknown_tasks(client):
    url = f"{API}/tasks/tests.tasks:add/jobs"
    response = client.post(url, content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
    unknown = client.post(f"{API}/tasks/tests.tasks:nope/jobs", json={"args": {}})
    assert unknown.status_code == 404


# -- security -------------------------------------------------------------------------


def test_cross_site_changes_are_refused(client, app):
    add.with_options(delay=60, job_id="j").enqueue(1, 2)
    evil = {"origin": "http://evil.example"}
    assert client.post(f"{API}/jobs/j/cancel", headers=evil).status_code == 403
    assert (
        client.post(f"{API}/jobs/j/cancel", headers={"sec-fetch-site": "cross-site"}).status_code
        == 403
    )
    assert app.job("j").status is JobState.SCHEDULED
    assert client.get(f"{API}/jobs/j", headers=evil).status_code == 200  # reads are fine
    # A page of another site that makes its Origin look like ours (an older
    # browser's case aside, the browser's own Sec-Fetch-Site says where it is)
    spoofed = {"origin": "http://localhost", "sec-fetch-site": "same-site"}
    assert client.post(f"{API}/jobs/j/cancel", headers=spoofed).status_code == 403
    assert app.job("j").status is JobState.SCHEDULED
    same = {"origin": "http://localhost"}
    assert client.post(f"{API}/jobs/j/cancel", headers=same).status_code == 200


def test_a_proxy_that_rewrites_host_does_not_make_the_pages_own_changes_cross_site(client, app):
    """nginx's default sends its upstream's address as Host (127.0.0.1:8000):
    the browser's Origin (https://ops.example.com) no longer matches it, but
    its Sec-Fetch-Site still says the request came from the dashboard's page."""
    add.with_options(delay=60, job_id="k").enqueue(1, 2)
    proxied = {"host": "127.0.0.1:8000", "origin": "https://ops.example.com"}
    from_page = {**proxied, "sec-fetch-site": "same-origin"}
    assert client.post(f"{API}/jobs/k/cancel", headers=from_page).status_code == 200
    assert app.job("k").status is JobState.CANCELLED
    from_elsewhere = {**proxied, "sec-fetch-site": "cross-site"}
    add.with_options(delay=60, job_id="m").enqueue(1, 2)
    assert client.post(f"{API}/jobs/m/cancel", headers=from_elsewhere).status_code == 403


def test_credentials_are_required_when_set(app):
    creds = Credentials(token="s3cret", user="ops", password="pw")
    with TestClient(create_app(app, creds), base_url="http://localhost") as client:
        denied = client.get(f"{API}/queues")
        assert denied.status_code == 401 and denied.headers["www-authenticate"]
        assert (
            client.get(f"{API}/queues", headers={"authorization": "Bearer nope"}).status_code == 401
        )
        assert (
            client.get(f"{API}/queues", headers={"authorization": "Bearer s3cret"}).status_code
            == 200
        )
        basic = base64.b64encode(b"ops:pw").decode()
        assert (
            client.get(f"{API}/queues", headers={"authorization": f"Basic {basic}"}).status_code
            == 200
        )
        assert client.get(f"{API}/queues", headers={"authorization": "Basic !!"}).status_code == 401
        assert client.get(f"{API}/health").status_code == 200  # for load balancers


def test_binding_beyond_localhost_needs_credentials_or_insecure(monkeypatch):
    check_bind("127.0.0.1", None, insecure=False)
    with pytest.raises(ValueError, match="without credentials"):
        check_bind("0.0.0.0", None, insecure=False)
    check_bind("0.0.0.0", None, insecure=True)
    check_bind("0.0.0.0", Credentials(token="t"), insecure=False)
    monkeypatch.setenv("TAREFA_DASHBOARD_USER", "ops")
    monkeypatch.delenv("TAREFA_DASHBOARD_PASSWORD", raising=False)
    with pytest.raises(ValueError, match="both"):
        Credentials.from_env()
