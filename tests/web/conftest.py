"""The web side's servers: tarefa's ASGI app served by uvicorn on a free port
of 127.0.0.1, in a thread, for the dashboard in Chromium and for requests
that must go through a real HTTP server (Starlette's TestClient decodes a
path twice, so it cannot send an id holding "%2F" as it is)."""

from __future__ import annotations

import socket
import threading

import pytest
import uvicorn

from tarefa.web.server import create_app

from ..waits import PATIENCE


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
