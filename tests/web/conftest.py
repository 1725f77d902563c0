"""The web side's servers: tarefa's ASGI app served by uvicorn on a free port
of 127.0.0.1, in a thread, for the dashboard in Chromium and for requests
that must go through a real HTTP server (Starlette's TestClient decodes a
path twice, so it cannot send an id holding "%2F" as it is)."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
import uvicorn

from tarefa.web.server import create_app

from ..conftest import ROOT
from ..waits import PATIENCE

CHROMIUM = "/usr/bin/chromium"
SHOTS = ROOT / "test-artifacts" / "dashboard"
# The browser's time zone in the dashboard's tests: UTC-3 all year (no
# daylight saving since 2019), so a local time and its UTC differ.
ZONE = "America/Sao_Paulo"
UTC_OFFSET_HOURS = -3

needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)"
)


@pytest.fixture
def serve():
    """Start serving an ASGI app; returns its URL, ending with "/"."""
    running = []

    def start(asgi) -> str:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        config = uvicorn.Config(asgi, host="127.0.0.1", port=port, log_level="warning")
        uv = uvicorn.Server(config)
        thread = threading.Thread(target=uv.run, daemon=True)
        thread.start()
        running.append((uv, thread))
        while not uv.started:
            assert thread.is_alive(), "the server did not start"
            thread.join(0.01)
        return f"http://127.0.0.1:{port}/"

    yield start
    for uv, thread in running:
        uv.should_exit = True
        thread.join(PATIENCE)


@pytest.fixture
def server(app, serve) -> str:
    """The dashboard and API of the tests' App."""
    return serve(create_app(app))


@pytest.fixture
def drain(run_worker):
    """Run a burst worker to the end, in a thread of its own: Playwright's sync
    API keeps an event loop running in this one."""

    def run(queues=("default",)) -> None:
        errors = []
        thread = threading.Thread(target=lambda: _run(run_worker, queues, errors))
        thread.start()
        thread.join(PATIENCE)
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
        page = browser.new_page(viewport={"width": 1280, "height": 800}, timezone_id=ZONE)
        page.on("dialog", lambda dialog: dialog.accept())  # confirm() of dangerous actions
        yield page
        browser.close()
