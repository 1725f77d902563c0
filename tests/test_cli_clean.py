"""``tarefa clean QUEUE --state S --older-than AGE [--yes]``, through the real
entry point: what it deletes, its confirmation, and bad input."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys

import pytest

from tarefa.store.keys import queue_keys

from .conftest import PYTHONPATH, ROOT
from .tasks import add, always_fails
from .test_cli import tarefa
from .waits import PATIENCE, wait_until

K = queue_keys("default")
DAY_MS = 86_400_000


@pytest.fixture
def ended(app, r, run_worker):
    """3 completed and 2 failed jobs of queue default, ended 2 days ago, and
    one completed just now."""
    old = add.enqueue_many([(i, 1) for i in range(3)])
    old += always_fails.with_options(retries=0).enqueue_many([("x",)] * 2)
    run_worker()
    for job in old:
        at = int(r.hget(K.job(job.id), "finished_at")) - 2 * DAY_MS
        r.hset(K.job(job.id), "finished_at", at)
        if r.zscore(K.failed, job.id) is not None:
            r.zadd(K.failed, {job.id: at})
    fresh = add.enqueue(9, 9)
    run_worker()
    return old, fresh


def test_clean_with_yes_deletes_the_old_jobs_of_that_state(app, ended):
    old, fresh = ended
    out = tarefa("clean", "default", "--state", "completed", "--older-than", "1d", "--yes")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "3 completed jobs of default deleted"
    assert app.queue("default").counts()["completed"] == 1  # the fresh one
    assert fresh.status.value == "completed"
    out = tarefa("clean", "default", "-s", "failed", "--older-than", "86400", "--yes")
    assert out.stdout.strip() == "2 failed jobs of default deleted"
    assert app.queue("default").counts()["failed"] == 0


def test_without_yes_and_no_terminal_it_refuses_at_once(app, ended):
    out = tarefa("clean", "default", "--state", "completed", "--older-than", "1d")
    assert out.returncode == 2
    assert "add --yes to confirm (no terminal to ask on)" in out.stderr
    assert app.queue("default").counts()["completed"] == 4


def _on_a_terminal(answer: bytes, *args: str) -> tuple[int, str]:
    """Run ``tarefa *args`` with a terminal for its input, answer its
    question, and return its exit code and everything it printed."""
    leader, follower = pty.openpty()
    env = dict(os.environ, PYTHONPATH=PYTHONPATH)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tarefa", *args],
        stdin=follower, stdout=follower, stderr=follower, cwd=ROOT, env=env,
    )  # fmt: skip
    os.close(follower)
    seen = b""
    try:
        while b"[y/N]" not in seen:
            ready, _, _ = select.select([leader], [], [], PATIENCE)
            assert ready, f"no question asked: {seen!r}"
            seen += os.read(leader, 4096)
        os.write(leader, answer + b"\n")
        code = proc.wait(PATIENCE)
        while select.select([leader], [], [], 0)[0]:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
            proc.wait(PATIENCE)
    return code, seen.decode()


def test_on_a_terminal_it_asks_first(app, ended):
    args = ("clean", "default", "--state", "completed", "--older-than", "2h")
    code, said = _on_a_terminal(b"n", *args)
    assert "Delete the completed jobs of default that ended more than 7200 s ago?" in said
    assert code == 1 and "Aborted" in said
    assert app.queue("default").counts()["completed"] == 4
    code, said = _on_a_terminal(b"y", *args)
    assert code == 0 and "3 completed jobs of default deleted" in said
    wait_until(lambda: app.queue("default").counts()["completed"] == 1)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--state", "queued", "--older-than", "1d"], "'queued' is not one of"),
        (["--state", "failed", "--older-than", "7w"], "--older-than must be seconds or a duration"),
        (["--state", "failed", "--older-than", "-5"], "--older-than must be seconds or a duration"),
        (["--state", "failed", "--older-than", "soon"], "such as '30s', '15m', '2h' or '7d'"),
        (["--state", "failed"], "Missing option '--older-than'"),
        (["--older-than", "1d"], "Missing option '--state'"),
    ],
)
def test_bad_usage_exits_2_and_deletes_nothing(app, ended, args, says):
    out = tarefa("clean", "default", *args, "--yes")
    assert out.returncode == 2 and says in out.stderr, out.stderr
    assert app.queue("default").counts()["failed"] == 2


def test_an_unknown_queue_exits_3(app, ended):
    out = tarefa("clean", "nope", "--state", "failed", "--older-than", "1d", "--yes")
    assert out.returncode == 3 and "no queue 'nope" in out.stderr
