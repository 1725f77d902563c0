"""The embedded default: with TAREFA_URL unset, tarefa starts one private
redis-server under ./.tarefa/ (unix socket only, AOF on) and every process run
from that directory shares it.

Each test stops the server it started, and kills by pid any redis-server left
running in its directory (say, a second one a race let start), so no daemon
outlives the test.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import redis

from tarefa import App
from tarefa.store import Embedded

from ..conftest import PYTHONPATH
from ..processes import alive
from ..waits import PATIENCE, wait_until

# A process that says "ready", waits for a line on stdin (the starting gun), then
# does what a producer does first: enqueue through App() with no TAREFA_URL.
FIRST_USE = r"""
import json, sys
from tarefa import App
print("ready", flush=True)
sys.stdin.readline()
app = App()
job = app.enqueue("tests.tasks:record", sys.argv[1])
info = app.store.clients.sync.info("server")
print(json.dumps({"url": app.store.url, "run_id": info["run_id"], "pid": info["process_id"]}))
"""


def env_without_url(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TAREFA_URL", "TAREFA_HOME")}
    return env | extra


def tarefa_cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tarefa", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=PATIENCE,
    )


def redis_servers_in(home: Path) -> list[int]:
    """Pids of the redis-server processes running in ``home`` (its --dir)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if "redis-server" in (entry / "comm").read_text() and (
                (entry / "cwd").resolve() == home.resolve()
            ):
                pids.append(int(entry.name))
        except OSError:  # gone meanwhile, or not ours to look at
            continue
    return sorted(pids)


def server_pid(server: Embedded) -> int:
    with server.client() as client:
        return int(client.info("server")["process_id"])


@pytest.fixture
def homes(monkeypatch):
    """No TAREFA_URL; register each .tarefa dir a test uses, to clean it up."""
    monkeypatch.delenv("TAREFA_URL", raising=False)
    monkeypatch.delenv("TAREFA_HOME", raising=False)
    used: list[Path] = []
    yield used
    for home in used:
        Embedded(home.absolute()).stop()
        for pid in redis_servers_in(home):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def project(tmp_path, monkeypatch, homes) -> Path:
    """A project directory to run from: its server lives in ./.tarefa/."""
    monkeypatch.chdir(tmp_path)
    homes.append(tmp_path / ".tarefa")
    return tmp_path


def test_concurrent_first_use_starts_exactly_one_server(project):
    env = env_without_url(PYTHONPATH=PYTHONPATH)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", FIRST_USE, f"p{i}"],
            cwd=project,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    try:
        for proc in procs:  # both imported tarefa and wait for the gun
            assert proc.stdout.readline() == "ready\n", proc.stderr.read()
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = [proc.communicate(timeout=PATIENCE) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    seen = [json.loads(out) for out, _ in outputs]

    server = Embedded(project / ".tarefa")
    assert seen[0] == seen[1]  # same url, same run_id, same pid: one server
    assert seen[0]["url"] == server.url
    pid = seen[0]["pid"]
    assert redis_servers_in(server.home) == [pid]
    assert int(server.pidfile.read_text()) == pid
    app = App()  # this process, same directory: the same server, both jobs
    try:
        assert app.store.url == server.url
        assert app.queue("default").counts()["queued"] == 2
    finally:
        app.close()

    status = tarefa_cli("embedded", "status", cwd=project, env=env_without_url())
    assert status.returncode == 0, status.stderr
    assert str(server.socket) in "".join(status.stdout.split())  # however it is wrapped
    assert f"pid: {pid}" in status.stdout.splitlines()

    stop = tarefa_cli("embedded", "stop", cwd=project, env=env_without_url())
    assert (stop.returncode, stop.stdout.strip()) == (0, "stopped"), stop.stderr
    wait_until(lambda: not alive(pid), what="the embedded redis-server to exit")
    status = tarefa_cli("embedded", "status", cwd=project, env=env_without_url())
    assert status.returncode == 3, status.stdout + status.stderr
    assert "not running" in status.stdout


def test_embedded_status_prints_each_fact_on_one_line(tmp_path, monkeypatch, homes):
    """``tarefa embedded status`` is read by people and scripts alike
    (``... | grep socket``): a fact must not be split over two lines, however
    long the path and whatever the terminal (here: none, a pipe)."""
    # A home whose socket path is long (96 chars) but still fits AF_UNIX.
    pad = 96 - len(f"{tmp_path}//.tarefa/redis.sock")
    assert pad > 0, f"tmp_path too long for this test: {tmp_path}"
    home = tmp_path / ("p" * pad) / ".tarefa"
    monkeypatch.setenv("TAREFA_HOME", str(home))
    homes.append(home)
    server = Embedded.here()
    assert server.socket == home / "redis.sock"
    server.ensure_running()

    env = env_without_url(TAREFA_HOME=str(home))
    status = tarefa_cli("embedded", "status", cwd=tmp_path, env=env)
    assert status.returncode == 0, status.stderr
    assert f"socket: {server.socket}" in status.stdout.splitlines(), status.stdout


def test_embedded_server_is_durable_and_private(project):
    server = Embedded.here()
    assert server.home == project / ".tarefa"
    assert server.ensure_running() == server.url
    client = redis.Redis(unix_socket_path=str(server.socket), decode_responses=True)
    try:
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
        assert client.config_get("port") == {"port": "0"}  # no TCP at all
        assert client.config_get("unixsocket") == {"unixsocket": str(server.socket)}
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    finally:
        client.close()
    assert stat.S_IMODE(server.socket.stat().st_mode) == 0o700  # this user only
    assert server.ensure_running() == server.url  # idempotent: the same server
    assert redis_servers_in(server.home) == [server_pid(server)]


def test_queued_jobs_survive_an_embedded_restart(project):
    app = App()
    try:
        job = app.enqueue("tests.tasks:record", "kept")
        assert app.store.url == Embedded.here().url
        pid = server_pid(Embedded.here())
    finally:
        app.close()

    stop = tarefa_cli("embedded", "stop", cwd=project, env=env_without_url())
    assert (stop.returncode, stop.stdout.strip()) == (0, "stopped"), stop.stderr
    wait_until(lambda: not alive(pid), what="the embedded redis-server to exit")
    assert not Embedded.here().is_running()

    again = App()  # starts the server again, from the AOF
    try:
        assert again.queues() == ["default"]
        assert again.queue("default").counts()["queued"] == 1
        info = again.job(job.id).info()
        assert (info.state, info.task) == ("queued", "tests.tasks:record")
        assert server_pid(Embedded.here()) != pid  # really a new server
    finally:
        again.close()


def test_a_home_too_long_for_a_unix_socket_still_works(tmp_path, monkeypatch, homes):
    home = tmp_path / ("deep" * 40) / ".tarefa"
    assert len(str(home / "redis.sock")) > 107  # the AF_UNIX limit
    monkeypatch.setenv("TAREFA_HOME", str(home))
    homes.append(home)

    server = Embedded.here()
    assert server.home == home
    assert len(str(server.socket)) <= 100
    assert server.socket.parent == Path(tempfile.gettempdir())
    assert Embedded(home).socket == server.socket  # stable: every process finds it

    app = App()
    try:
        job = app.enqueue("tests.tasks:record", "deep")
        assert job.info().state == "queued"
    finally:
        app.close()
    assert server.pidfile.exists()
    assert redis_servers_in(home) == [server_pid(server)]

    env = env_without_url(TAREFA_HOME=str(home))
    status = tarefa_cli("embedded", "status", cwd=tmp_path, env=env)
    assert status.returncode == 0, status.stderr
    assert f"socket: {server.socket}" in status.stdout
    stop = tarefa_cli("embedded", "stop", cwd=tmp_path, env=env)
    assert (stop.returncode, stop.stdout.strip()) == (0, "stopped"), stop.stderr


def test_a_server_that_is_alive_but_not_answering_is_never_started_twice(project):
    """A busy or frozen server (loading a large AOF, stopped by a debugger) must
    not look dead: a second server on the same data would corrupt it."""
    server = Embedded.here()
    server.ensure_running()
    pid = server_pid(server)
    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(Exception, match=f"redis-server \\(pid {pid}\\) is not answering"):
            server.ensure_running(timeout=0.5)
        assert redis_servers_in(project / ".tarefa") == [pid]
    finally:
        os.kill(pid, signal.SIGCONT)
    assert server.ensure_running() == server.url and server_pid(server) == pid


def test_a_stale_pidfile_does_not_stop_a_fresh_start(project):
    server = Embedded.here()
    server.home.mkdir(parents=True)
    server.pidfile.write_text(str(os.getpid()))  # alive, but not a redis-server
    server.ensure_running()
    assert server_pid(server) != os.getpid()


def test_a_sub_folder_uses_the_projects_server(project, monkeypatch):
    """Like git with .git: the nearest .tarefa above the working directory,
    not a second, empty server in the sub-folder."""
    server = Embedded.here()
    assert server.home == project / ".tarefa"
    server.ensure_running()
    deep = project / "src" / "shop"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert Embedded.here().home == project / ".tarefa"
    status = tarefa_cli("embedded", "status", cwd=deep, env=env_without_url())
    assert status.returncode == 0 and f"pid: {server_pid(server)}" in status.stdout.splitlines()
    assert not (deep / ".tarefa").exists() and not (project / "src" / ".tarefa").exists()
    assert redis_servers_in(project / ".tarefa") == [server_pid(server)]


def test_with_no_tarefa_folder_above_it_is_made_here(tmp_path, monkeypatch, homes):
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    homes.append(deep / ".tarefa")
    assert Embedded.here().home == deep / ".tarefa"
    Embedded.here().ensure_running()
    assert (deep / ".tarefa" / "redis.pid").exists()


def test_stop_refuses_while_other_clients_are_connected(project):
    server = Embedded.here()
    server.ensure_running()
    with redis.Redis(unix_socket_path=str(server.socket)) as worker_like:
        worker_like.ping()
        refused = tarefa_cli("embedded", "stop", cwd=project, env=env_without_url())
        assert refused.returncode == 1 and server.is_running()
        assert "1 other clients are connected" in refused.stderr
        assert "ping x1" in refused.stderr and "--force" in refused.stderr
        forced = tarefa_cli("embedded", "stop", "--force", cwd=project, env=env_without_url())
        assert (forced.returncode, forced.stdout.strip()) == (0, "stopped"), forced.stderr
    wait_until(lambda: not server.is_running(), what="the embedded server to stop")
    bad = tarefa_cli("embedded", "stop", "--forse", cwd=project, env=env_without_url())
    assert bad.returncode == 2 and "No such option" in bad.stderr


def test_demo_says_the_embedded_server_keeps_running(project):
    demo = tarefa_cli("demo", cwd=project, env=env_without_url())
    assert demo.returncode == 0, demo.stderr
    assert "The embedded Redis server keeps running" in demo.stdout
    assert "tarefa embedded stop" in " ".join(demo.stdout.split())
    assert Embedded.here().is_running()


def test_a_worker_says_at_start_that_it_uses_the_embedded_server(project):
    """A TAREFA_URL missing in production would leave producers and workers
    on private servers of their own: the worker's first line says so."""
    env = env_without_url(PYTHONPATH=PYTHONPATH)
    out = tarefa_cli("worker", "tests.tasks:app", "--burst", cwd=project, env=env)
    assert out.returncode == 0, out.stderr
    assert f"Redis: the embedded server at {Embedded.here().url} (TAREFA_URL is not set)" in (
        out.stderr
    )
