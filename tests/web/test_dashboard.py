"""The dashboard in a real headless Chromium (Debian's, driven by Playwright),
served by uvicorn on a free port, over a real Redis. Screenshots go to
``test-artifacts/dashboard/``."""

from __future__ import annotations

import re
import socket
import threading
from pathlib import Path

import pytest
import uvicorn

from tarefa.web.server import create_app

from ..conftest import ROOT
from ..tasks import add, always_fails, flaky

CHROMIUM = "/usr/bin/chromium"
SHOTS = ROOT / "test-artifacts" / "dashboard"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)"
)


@pytest.fixture
def server(app):
    """The dashboard of the tests' App on 127.0.0.1:<free port>."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(create_app(app), host="127.0.0.1", port=port, log_level="warning")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    while not uv.started:
        assert thread.is_alive(), "the dashboard server did not start"
        thread.join(0.01)
    yield f"http://127.0.0.1:{port}/"
    uv.should_exit = True
    thread.join(10)


@pytest.fixture
def drain(run_worker):
    """Run a burst worker to the end, in a thread of its own: Playwright's sync
    API keeps an event loop running in this one."""

    def run(queues=("default",)) -> None:
        errors = []
        thread = threading.Thread(target=lambda: _run(run_worker, queues, errors))
        thread.start()
        thread.join(60)
        assert not thread.is_alive() and not errors, errors

    return run


def _run(run_worker, queues, errors) -> None:
    try:
        run_worker(queues)
    except Exception as exc:  # reported by the test's thread
        errors.append(exc)


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.on("dialog", lambda dialog: dialog.accept())  # confirm() of dangerous actions
        yield page
        browser.close()


def test_overview_shows_real_counts(server, page, drain):
    from playwright.sync_api import expect

    add.enqueue_many([(1, 1)] * 3)
    always_fails.with_options(queue="mail", retries=0).enqueue("smtp down")
    drain(["mail"])
    page.goto(server)
    default = page.locator('tr[data-queue="default"]')
    expect(default).to_contain_text("default")
    expect(default.locator("td").nth(1)).to_have_text("3")  # queued
    expect(page.locator('tr[data-queue="mail"] td').nth(6)).to_have_text("1")  # failed
    page.screenshot(path=SHOTS / "overview.png", full_page=True)


def test_retry_a_failed_job_and_see_it_run(server, page, app, drain):
    from playwright.sync_api import expect

    job = flaky.with_options(retries=0).enqueue("dashboard", 1)  # fails once, then succeeds
    drain()
    page.goto(server + "#/queues/default?state=failed")
    row = page.locator(f'tr[data-job="{job.id}"]')
    expect(row).to_contain_text("ConnectionError: failure 1")
    page.screenshot(path=SHOTS / "failed.png", full_page=True)

    row.get_by_role("button", name="Retry").click()
    expect(page.locator("#toast")).to_have_text("retry: done")
    expect(page.locator(f'tr[data-job="{job.id}"]')).to_have_count(0)  # not failed any more
    drain()
    page.goto(server + f"#/jobs/{job.id}?queue=default")
    expect(page.locator("td .state-completed")).to_have_text("completed")
    expect(page.locator("table")).to_contain_text("attempts")
    page.screenshot(path=SHOTS / "job-completed.png", full_page=True)
    assert job.result(timeout=0) == 1  # its first attempt after the retry


def test_job_detail_shows_the_traceback_and_actions_change_state(server, page, app, drain):
    from playwright.sync_api import expect

    failed = always_fails.with_options(retries=0).enqueue("no such page")
    drain()
    page.goto(server + f"#/jobs/{failed.id}")
    expect(page.locator("pre.traceback")).to_contain_text("Traceback")
    expect(page.locator("table")).to_contain_text("no such page")
    page.screenshot(path=SHOTS / "job-failed.png", full_page=True)

    waiting = add.with_options(delay=600).enqueue(2, 2)
    page.goto(server + "#/queues/default?state=scheduled")
    page.locator(f'tr[data-job="{waiting.id}"]').get_by_role("button", name="Cancel").click()
    expect(page.locator("#toast")).to_have_text("cancel: done")
    assert waiting.status.value == "cancelled"

    page.get_by_role("button", name="Pause").click()
    expect(page.locator("h1")).to_have_text(re.compile(r"\(paused\)"))
    assert app.queue("default").paused
    page.get_by_role("button", name="Purge").click()  # the confirm() is accepted
    expect(page.locator("#toast")).to_have_text("purge: done")
    assert app.queue("default").counts()["failed"] == 0


def test_a_page_from_elsewhere_cannot_act(server, page):
    """A cross-site form post (CSRF) is refused; the job stays failed."""
    add.with_options(delay=600, job_id="target").enqueue(1, 1)
    page.set_content(
        f'<form method="post" action="{server}api/v1/jobs/target/cancel"></form>'
        "<script>document.forms[0].submit()</script>"
    )
    page.wait_for_load_state()
    assert "cross-site request refused" in page.content()
    assert add.app.job("target").status.value == "scheduled"
