"""A real PostgreSQL server for the tests: ``initdb`` in a temporary directory
and ``pg_ctl`` on a free port of 127.0.0.1, from Debian's ``postgresql``
package (its programs are under /usr/lib/postgresql/VERSION/bin, not on
PATH). PostgreSQL refuses to run as root: as root, the server runs as the
``postgres`` user the package creates. One superuser, ``tarefa``, trusted
on 127.0.0.1 (no password)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from .redis_server import free_port
from .waits import PATIENCE


def bin_dir() -> Path | None:
    """Where initdb and pg_ctl are, or None when PostgreSQL is not installed."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


class PostgresServer:
    def __init__(self) -> None:
        where = bin_dir()
        if where is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        self.bin = where
        self.port = free_port()
        # Not under pytest's tmp_path: as root, the postgres user must reach it.
        self.home = Path(tempfile.mkdtemp(prefix="tarefa-pg-"))
        self.data = self.home / "data"
        self.user = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        if self.user is not None:
            os.chown(self.home, self.user.pw_uid, self.user.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql://tarefa@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self.user is not None else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=PATIENCE * 2)

    def start(self) -> PostgresServer:
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", "tarefa", "--auth=trust",
            "--no-sync", "-E", "UTF8",
        )  # fmt: skip
        self.restart()
        return self

    def restart(self) -> None:
        """Start the server (again, after ``stop``), on the same port and data."""
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.home} -c fsync=off"
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.home / "log"), "-w", "-t", str(int(PATIENCE)), "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop it (``immediate``: as a crash would)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def close(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # (stopped already)
        shutil.rmtree(self.home, ignore_errors=True)
