"""tarefa.contrib.fastapi: the dashboard, REST API and metrics under a path
of a user's FastAPI app, behind the app's own auth dependency, over a real
Redis; in Chromium too; and the lifespan that closes tarefa's connections."""

from __future__ import annotations

from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import Depends, FastAPI, Header, HTTPException
from fastapi.testclient import TestClient

from tarefa import App, JobState
from tarefa.contrib.fastapi import lifespan, mount_dashboard

from ..tasks import add
from ..waits import wait_until
from ..web.conftest import needs_chromium

ADMIN = "/admin/queues"
STAFF = {"x-staff": "ana"}


def staff(x_staff: str | None = Header(None)) -> str:
    """The user app's own auth: a staff member's name in a header."""
    if x_staff != "ana":
        raise HTTPException(status_code=403, detail="staff only")
    return x_staff


def user_app(app, **options) -> FastAPI:
    api = FastAPI()

    @api.get("/")
    def home() -> dict[str, str]:
        return {"app": "shop"}

    mount_dashboard(api, app, ADMIN, dependencies=[Depends(staff)], **options)
    return api


@pytest.fixture
def client(app):
    with TestClient(user_app(app), base_url="http://shop.example") as client:
        yield client


def test_every_request_under_the_path_runs_the_apps_dependency(client):
    add.enqueue(1, 2)
    for path in ("/", "/static/app.js", "/api/v1/queues", "/metrics", "/api/v1/workers"):
        assert client.get(ADMIN + path).status_code == 403, path
        assert client.get(ADMIN + path, headers=STAFF).status_code == 200, path
    queues = client.get(f"{ADMIN}/api/v1/queues", headers=STAFF).json()
    assert [q["name"] for q in queues] == ["default"] and queues[0]["counts"]["queued"] == 1
    assert "<title>tarefa</title>" in client.get(f"{ADMIN}/", headers=STAFF).text
    assert client.get("/").json() == {"app": "shop"}  # the app's own routes, as before
    assert not any(p.startswith(ADMIN) for p in client.get("/openapi.json").json()["paths"])


def test_the_health_check_stays_open_and_the_bare_path_redirects(client):
    assert client.get(f"{ADMIN}/api/v1/health").json()["ok"] is True
    bare = client.get(ADMIN, follow_redirects=False)
    assert bare.status_code == 307 and bare.headers["location"] == ADMIN + "/"


def test_a_posted_body_reaches_the_api_and_cross_site_changes_are_refused(client, app):
    body = {"args": {"a": 2, "b": 3}, "options": {"job_id": "order-7"}}
    created = client.post(f"{ADMIN}/api/v1/tasks/tests.tasks:add/jobs", json=body, headers=STAFF)
    assert created.status_code == 201 and created.json()["id"] == "order-7"
    assert app.job("order-7").status == JobState.QUEUED
    bad = client.post(
        f"{ADMIN}/api/v1/tasks/tests.tasks:add/jobs", json={"args": {"a": "x"}}, headers=STAFF
    )
    assert bad.status_code == 422
    evil = {**STAFF, "origin": "https://evil.example", "sec-fetch-site": "cross-site"}
    assert client.post(f"{ADMIN}/api/v1/queues/default/pause", headers=evil).status_code == 403
    assert not app.queue("default").paused


def test_tarefas_own_credentials_apply_too_but_for_the_health_check(app, monkeypatch):
    monkeypatch.setenv("TAREFA_DASHBOARD_TOKEN", "s3cret")
    api = FastAPI()
    mount_dashboard(api, app, ADMIN)  # guarded by the token alone
    with TestClient(api, base_url="http://shop.example") as client:
        assert client.get(f"{ADMIN}/api/v1/queues").status_code == 401
        token = {"authorization": "Bearer s3cret"}
        assert client.get(f"{ADMIN}/api/v1/queues", headers=token).status_code == 200
        assert client.get(f"{ADMIN}/api/v1/health").status_code == 200


def test_an_unguarded_mount_and_bad_arguments_are_refused_with_a_clear_error(app, monkeypatch):
    for name in ("TAREFA_DASHBOARD_TOKEN", "TAREFA_DASHBOARD_USER", "TAREFA_DASHBOARD_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="nothing would guard tarefa's dashboard at /ops"):
        mount_dashboard(FastAPI(), app, "/ops/")
    with pytest.raises(TypeError, match=r"dependencies are Depends\(...\)"):
        mount_dashboard(FastAPI(), app, "/ops", dependencies=[staff])
    with pytest.raises(ValueError, match="must start with /"):
        mount_dashboard(FastAPI(), app, "ops", insecure=True)
    with pytest.raises(ValueError, match="name no parameters"):
        mount_dashboard(FastAPI(), app, "/ops/{team}", insecure=True)
    with pytest.raises(TypeError, match="path must be a str"):
        mount_dashboard(FastAPI(), app, 7, insecure=True)
    api = FastAPI()
    mount_dashboard(api, app, "/ops", insecure=True)  # a private network's choice
    with TestClient(api) as client:
        assert client.get("/ops/api/v1/queues").status_code == 200


def test_the_lifespan_closes_tarefas_connections_around_the_apps_own(redis_url, r):
    events = []

    @asynccontextmanager
    async def own(api):
        events.append("start")
        yield {"db": "open"}
        events.append("stop")

    # An App of its own on database 7, which nothing else uses: its
    # connections are those CLIENT LIST shows there.
    shop = App(urlsplit(redis_url)._replace(path="/7").geturl())
    order_task = shop.task(add.fn, name="shop.add")

    def connections() -> int:
        return sum(1 for client in r.client_list() if client["db"] == "7")

    api = FastAPI(lifespan=lifespan(shop, own))

    @api.post("/orders")
    async def order() -> dict[str, str]:
        job = await order_task.aenqueue(1, 2)
        return {"job": job.id}

    with TestClient(api) as client:
        assert client.post("/orders").status_code == 200
        order_task.enqueue(3, 4)
        assert connections() > 0 and events == ["start"]
    assert events == ["start", "stop"]
    wait_until(lambda: connections() == 0, "tarefa's connections closed")


@needs_chromium
def test_the_mounted_dashboard_works_in_a_browser(app, serve, page):
    from playwright.sync_api import expect

    add.enqueue_many([(1, 1)] * 2)
    root = serve(user_app(app))
    page.set_extra_http_headers(STAFF)
    page.goto(root + ADMIN.lstrip("/"))  # the bare path: redirected to ADMIN/
    expect(page.locator('tr[data-queue="default"] td').nth(1)).to_have_text("2")
    assert httpx.get(root + ADMIN.lstrip("/") + "/api/v1/queues").status_code == 403
