"""Fixtures: one real Redis for the session (flushed per test), private Redis
servers for tests that kill it, and workers in-process or as subprocesses.

Set ``TAREFA_TEST_URL`` to run against a Redis you started yourself (it is
flushed!); by default the suite starts its own.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import traceback
from pathlib import Path

import pytest
import redis

from tarefa.worker import Worker

from .cluster import Cluster
from .redis_server import RedisServer
from .sentinel import SentinelSet
from .waits import PATIENCE

ROOT = Path(__file__).resolve().parent.parent
# For subprocesses: this checkout's sources first (not an installed copy), and
# the tests package.
PYTHONPATH = os.pathsep.join([str(ROOT / "src"), str(ROOT)])


@pytest.fixture(autouse=True)
def no_worker_thread_left():
    """A test that runs a worker in a thread must have stopped it by its end:
    one left running outlives the suite's Redis and keeps the run from exiting."""
    before = set(threading.enumerate())
    yield
    left = [
        t for t in threading.enumerate()
        if t not in before and not t.daemon and t.name.endswith("(run)")
    ]  # fmt: skip
    for thread in left:
        thread.join(PATIENCE)  # a worker finishing its shutdown
    stuck = [t for t in left if t.is_alive()]
    frames = sys._current_frames()
    stacks = ["".join(traceback.format_stack(frames[t.ident])) for t in stuck if t.ident in frames]
    assert not stuck, "a worker thread is still running, at:\n" + "\n".join(stacks)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    url = os.environ.get("TAREFA_TEST_URL")
    server = None
    if not url:
        server = RedisServer(tmp_path_factory.mktemp("redis")).start()
        url = server.url
    os.environ["TAREFA_URL"] = url  # tests.tasks.app and subprocess workers use it
    yield url
    if server:
        server.stop()


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server of the session's own (tests/postgres_server.py)."""
    from .postgres_server import PostgresServer, bin_dir

    if bin_dir() is None:
        pytest.fail("PostgreSQL is not installed: apt-get install postgresql (.ci/run does)")
    server = PostgresServer().start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def shared_cluster(tmp_path_factory):
    """A Redis Cluster of 3 masters with a replica each, for the session's
    tests that do not break it (started on first use)."""
    made = Cluster(tmp_path_factory.mktemp("cluster"))
    yield made
    made.close()


@pytest.fixture(scope="session")
def shared_sentinel(tmp_path_factory):
    """A master with a replica and a sentinel, for the session's tests that do
    not fail it over (started on first use)."""
    made = SentinelSet(tmp_path_factory.mktemp("sentinel"))
    yield made
    made.close()


@pytest.fixture
def app_on(app):
    """Points the tests' App at another Redis for the test (a cluster, a
    sentinel's master), its masters flushed: ``app_on(cluster)``."""

    def point(servers: Cluster | SentinelSet):
        masters = servers.masters if isinstance(servers, Cluster) else [servers.master]
        for master in masters:
            client = master.client()
            client.flushall()
            client.close()
        app.close()
        app._url, app._store = servers.url, None
        return app

    default = app._url
    yield point
    app.close()
    app._url, app._store = default, None


@pytest.fixture
def r(redis_url):
    client = redis.Redis.from_url(redis_url, socket_timeout=None)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def app(r):
    """The tasks' App (tests/tasks.py), on a freshly flushed Redis."""
    from . import tasks

    tasks.app._store = None  # fresh clients, no per-process caches
    yield tasks.app
    tasks.app.close()


@pytest.fixture
def run_worker(app):
    """Run an in-process worker in burst mode until the queues are empty."""

    def run(queues=("default",), **options) -> Worker:
        options.setdefault("concurrency", 10)
        worker = Worker(app, queues, burst=True, **options)
        asyncio.run(worker.run())
        return worker

    return run


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of the test's own, for tests that kill it. Its AOF is
    fsynced on every write: with `everysec`, Redis may postpone the AOF write
    while a slow disk is still syncing, so even a killed *process* can lose
    the last second or two of writes, which would make these tests (about the
    worker, not the disk) depend on the disk's mood."""
    servers = []

    def start(aof: bool = True, fsync: str = "always", **options) -> RedisServer:
        """``options``: RedisServer's (password=, users=, tls=, path=...)."""
        server = RedisServer(tmp_path / f"redis{len(servers)}", aof=aof, fsync=fsync, **options)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.kill()


@pytest.fixture
def spawn_worker(r, tmp_path):
    """Start ``tarefa worker tests.tasks:app ...`` as a real subprocess."""
    procs = []

    def spawn(
        *args: str,
        url: str | None = None,
        app: str = "tests.tasks:app",
        idle_check: float | None = None,
    ) -> subprocess.Popen:
        """``idle_check``: seconds between the idle worker's safety-net checks
        (tests/idle_check.py), instead of 5."""
        env = dict(os.environ, PYTHONPATH=PYTHONPATH)
        if url:
            env["TAREFA_URL"] = url
        if not {"-q", "--queue"} & set(args):  # these tests serve default unless told
            args = ("-q", "default", *args)  # (with no -q, a worker serves every task's queue)
        log = open(tmp_path / f"worker{len(procs)}.log", "w")
        tarefa = ["tests.idle_check", str(idle_check)] if idle_check else ["tarefa"]
        proc = subprocess.Popen(
            [sys.executable, "-m", *tarefa, "worker", app, *args],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        proc.log_path = tmp_path / f"worker{len(procs)}.log"
        procs.append(proc)
        return proc

    yield spawn
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(PATIENCE)
