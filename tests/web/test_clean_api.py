"""``POST /api/v1/queues/{q}/clean``: deleting ended jobs by state and age
over the REST API, against a real Redis; bad bodies get a 422 that says why,
an unknown queue a 404, and nothing is deleted by either."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tarefa.store.keys import queue_keys
from tarefa.web.server import create_app

from ..tasks import add, always_fails

API = "/api/v1"
K = queue_keys("default")
DAY_MS = 86_400_000


@pytest.fixture
def client(app):
    with TestClient(create_app(app), base_url="http://localhost") as client:
        yield client


@pytest.fixture
def ended(app, r, run_worker):
    """2 failed jobs and 3 completed ones that ended 2 days ago, a cancelled
    one as old, and one completed now."""
    jobs = always_fails.with_options(retries=0).enqueue_many([("x",)] * 2)
    jobs += add.enqueue_many([(i, 1) for i in range(3)])
    cancelled = add.with_options(delay=600).enqueue(0, 0)
    cancelled.cancel()
    run_worker()
    for job in [*jobs, cancelled]:
        at = int(r.hget(K.job(job.id), "finished_at")) - 2 * DAY_MS
        r.hset(K.job(job.id), "finished_at", at)
        if r.zscore(K.failed, job.id) is not None:
            r.zadd(K.failed, {job.id: at})
    add.enqueue(9, 9)
    run_worker()


def counts(app) -> tuple[int, int]:
    c = app.queue("default").counts()
    return c["completed"], c["failed"]


def test_clean_deletes_the_jobs_of_that_state_that_ended_long_enough_ago(client, app, ended):
    url = f"{API}/queues/default/clean"
    answer = client.post(url, json={"state": "completed", "older_than": 86400})
    assert answer.status_code == 200
    assert answer.json() == {"queue": "default", "state": "completed", "deleted": 3}
    assert counts(app) == (1, 2)
    assert client.post(url, json={"state": "failed", "older_than": "3d"}).json()["deleted"] == 0
    assert client.post(url, json={"state": "failed", "older_than": "1d"}).json()["deleted"] == 2
    assert client.post(url, json={"state": "cancelled", "older_than": "36h"}).json()["deleted"] == 1
    assert client.post(url, json={"state": "completed", "older_than": 0}).json()["deleted"] == 1
    assert counts(app) == (0, 0)


@pytest.mark.parametrize(
    ("body", "where", "says"),
    [
        ({"state": "queued", "older_than": 60}, ["body", "state"], "'completed', 'failed' or"),
        ({"state": "failed", "older_than": -1}, ["body", "older_than"], "0 or more seconds"),
        ({"state": "failed", "older_than": "7w"}, ["body", "older_than"], "such as '30s'"),
        ({"state": "failed", "older_than": True}, ["body", "older_than"], "not bool"),
        ({"state": "failed", "older_than": None}, ["body", "older_than"], "not NoneType"),
        ({"state": "failed", "older_than": [60]}, ["body", "older_than"], "not list"),
        ({"state": "failed"}, ["body", "older_than"], "Field required"),
        ({"older_than": 60}, ["body", "state"], "Field required"),
        ({"state": "failed", "older_than": 60, "force": 1}, ["body", "force"], "Extra inputs"),
    ],
)
def test_a_bad_body_is_a_422_that_says_where_and_nothing_goes(client, app, ended, body, where,
                                                              says):  # fmt: skip
    answer = client.post(f"{API}/queues/default/clean", json=body)
    assert answer.status_code == 422
    [issue] = answer.json()["detail"]
    assert issue["loc"] == where and says in issue["msg"], issue
    assert counts(app) == (4, 2)


def test_a_body_that_is_not_json_is_a_422(client, app, ended):
    answer = client.post(
        f"{API}/queues/default/clean", content=b"state=failed",
        headers={"content-type": "application/json"},
    )  # fmt: skip
    assert answer.status_code == 422 and isinstance(answer.json()["detail"], list)
    assert counts(app) == (4, 2)


def test_an_unknown_queue_is_a_404(client, app, ended):
    answer = client.post(f"{API}/queues/nope/clean", json={"state": "failed", "older_than": 0})
    assert answer.status_code == 404 and answer.json() == {"detail": "no queue 'nope'"}
    assert counts(app) == (4, 2)


def test_a_cross_site_request_is_refused(client, app, ended):
    answer = client.post(
        f"{API}/queues/default/clean", json={"state": "failed", "older_than": 0},
        headers={"origin": "http://evil.example", "sec-fetch-site": "cross-site"},
    )  # fmt: skip
    assert answer.status_code == 403
    assert counts(app) == (4, 2)
