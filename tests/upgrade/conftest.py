"""Rolling deploys: workers, producers and operators of the previous release
(tarefa 0.1.0, commit ``PREVIOUS`` of this repository) and of this checkout
share one real redis-server, each release as subprocesses that import its own
code, and run the same tasks (``tasks.py``, API both releases have).

The previous release is installed once from this repository's own history
(``pip install --target``, from git) into pytest's cache directory, and reused
by later runs; a clone without that commit fails the tests, saying so. Each
execution is logged in a second Redis, the ledger of the fault scenarios
(tests/faults), whose ``Harness`` these tests build on.

Run them alone with ``pytest -m upgrade``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tarefa.store.keys import WORKERS

from ..conftest import ROOT
from ..faults.conftest import HOST, Harness

PREVIOUS = "619f9bf452d02f42f54ab757568d3cd27bcb3aaf"  # tarefa 0.1.0
APP_PATH = "tests.upgrade.tasks:app"


def pytest_collection_modifyitems(items):
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.upgrade)


@dataclass(frozen=True)
class Release:
    name: str
    path: Path  # the directory its ``tarefa`` package is in

    def env(self, url: str) -> dict[str, str]:
        """For a subprocess of this release on ``url``: its code first, then
        this checkout's root (the tests package)."""
        return dict(os.environ, PYTHONPATH=os.pathsep.join([str(self.path), str(ROOT)]),
                    TAREFA_URL=url)  # fmt: skip

    def check(self) -> None:
        """Its subprocesses import its own code, not the other release's."""
        out = subprocess.run(
            [sys.executable, "-c", "import tarefa; print(tarefa.__file__)"],
            cwd=ROOT, env=self.env(""), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert Path(out.stdout.strip()).is_relative_to(self.path), (self.name, out.stdout)


def _install_previous(target: Path) -> None:
    """``pip install`` commit PREVIOUS of this repository into ``target``."""
    try:
        found = subprocess.run(
            ["git", "-C", str(ROOT), "cat-file", "-e", f"{PREVIOUS}^{{commit}}"],
            capture_output=True, timeout=60,
        )  # fmt: skip
    except FileNotFoundError:
        pytest.fail("the upgrade tests need git, to install the previous release", False)
    if found.returncode != 0:
        pytest.fail(
            f"the previous release, commit {PREVIOUS}, is not in the clone at {ROOT}: the "
            "upgrade tests install it from there (a shallow clone? git fetch --unshallow)",
            False,
        )
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    out = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--disable-pip-version-check", "--target", str(partial),
         f"git+file://{ROOT}@{PREVIOUS}"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if out.returncode != 0:
        pytest.fail(f"could not install the previous release:\n{out.stdout}{out.stderr}", False)
    partial.rename(target)  # whole or not at all: a later run trusts what it finds


@pytest.fixture(scope="session")
def previous(request, tmp_path_factory) -> Release:
    cache = getattr(request.config, "cache", None)  # None with -p no:cacheprovider
    base = cache.mkdir("tarefa-previous-release") if cache else tmp_path_factory.mktemp("prev")
    target = base / PREVIOUS
    if not (target / "tarefa" / "__init__.py").exists():
        _install_previous(target)
    release = Release("0.1.0", target)
    release.check()
    return release


@pytest.fixture(scope="session")
def current() -> Release:
    release = Release("this checkout", ROOT / "src")
    release.check()
    return release


class Deploy(Harness):
    """One Redis under both releases: their workers, producers and command
    lines. ``self.app`` reads and operates as this checkout does, in-process."""

    def __init__(self, server, ledger, logs, previous: Release, current: Release):
        super().__init__(server, ledger, logs)
        self.releases = {"previous": previous, "current": current}

    def python(self, release: Release, *args: str, timeout: float = 90) -> str:
        """``python -m ARGS`` under ``release``; its output (it must succeed)."""
        out = subprocess.run(
            [sys.executable, "-m", *args], cwd=ROOT, env=release.env(self.server.url),
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        assert out.returncode == 0, (
            f"{release.name}: {' '.join(args)} exited {out.returncode}:\n{out.stdout}{out.stderr}"
        )
        return out.stdout

    def produce(self, release: Release, *args: str) -> Any:
        return json.loads(self.python(release, "tests.upgrade.produce", *args))

    def cli(self, release: Release, *args: str) -> str:
        return self.python(release, "tarefa", *args)

    def burst(self, release: Release) -> None:
        """A burst worker of ``release``: runs what is ready, then exits."""
        self.python(release, "tarefa", "worker", APP_PATH, "--burst")

    def start_worker(self, release: Release, *args: str) -> subprocess.Popen:
        """``tarefa worker`` of ``release`` (lease 1 s), registered when it returns."""
        return self.start_workers([release], *args)[0]

    def start_workers(self, releases: list[Release], *args: str) -> list[subprocess.Popen]:
        """A worker of each release, started together; registered when it returns."""
        procs = []
        for release in releases:
            log_path = self.logs / f"worker{len(self.workers)}.log"
            proc = subprocess.Popen(
                [sys.executable, "-m", "tarefa", "worker", APP_PATH, "--lease", "1", *args],
                cwd=ROOT, env=release.env(self.server.url),
                stdout=open(log_path, "w"), stderr=subprocess.STDOUT,
            )  # fmt: skip
            proc.log_path = log_path
            self.workers.append(proc)
            procs.append(proc)
        for proc, release in zip(procs, releases, strict=True):
            self.wait_until(
                lambda proc=proc: proc.poll() is not None or self.registered(proc),
                what=f"worker {proc.pid} ({release.name}) to register",
            )
            assert proc.poll() is None, proc.log_path.read_text()
        return procs

    def registered(self, proc: subprocess.Popen) -> bool:
        prefix = f"{HOST}:{proc.pid}:"
        return any(w.decode().startswith(prefix) for w in self.redis.smembers(WORKERS))


@pytest.fixture
def deploy(private_redis, r, redis_url, tmp_path, monkeypatch, previous, current):
    """A Redis of the test's own for both releases; ``r`` is the ledger."""
    monkeypatch.setenv("TAREFA_LEDGER_URL", redis_url)
    d = Deploy(private_redis(aof=False), r, tmp_path, previous, current)
    yield d
    d.stop_all()
    d.app.close()
    d.redis.close()
