"""Connections: the per-thread fast path producers use, across threads, forks
and a Redis restart; URLs redacted for messages."""

from __future__ import annotations

import gc
import os
import threading

import pytest
import redis

from tarefa import App
from tarefa.store.connection import redacted

from ..tasks import add
from ..waits import wait_until


def test_threads_enqueue_concurrently_each_on_its_own_connection(app):
    errors = []

    def produce(n):
        try:
            for i in range(200):
                add.enqueue(n, i)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert app.queue("default").counts()["queued"] == 1600


def test_a_forked_child_uses_a_connection_of_its_own(app):
    add.enqueue(1, 1)  # the parent's thread connection exists now
    pid = os.fork()
    if pid == 0:  # child: enqueue, then leave without running pytest's teardown
        try:
            add.enqueue(2, 2)
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    add.enqueue(3, 3)  # the parent's connection was not disturbed
    assert app.queue("default").counts()["queued"] == 3


def test_closing_an_app_closes_every_threads_connection_at_once(private_redis):
    """A web app closing tarefa as it stops (a lifespan, an atexit) leaves no
    connection open behind it, without waiting for the garbage collector."""
    server = private_redis()
    client = redis.Redis(port=server.port)
    app = App(server.url)
    task = app.task(add.fn, name="t:add")
    producers = [threading.Thread(target=task.enqueue, args=(i, i)) for i in range(3)]
    gc.disable()  # the collector would close what close() left open
    try:
        task.enqueue(0, 0)
        for thread in producers:
            thread.start()
        for thread in producers:
            thread.join()
        assert len(client.client_list()) > 1
        app.close()
        ours = [str(client.client_id())]
        # (Redis lists a closed connection until it has read the close.)
        wait_until(lambda: [c["id"] for c in client.client_list()] == ours, "connections closed")
    finally:
        gc.enable()
    assert app.queue("default").counts()["queued"] == 4  # and it connects again when used


def test_enqueue_reconnects_after_a_redis_restart(private_redis):
    server = private_redis()
    app = App(server.url)
    task = app.task(add.fn, name="t:add")
    first = task.enqueue(1, 2)
    server.kill()
    server.start()
    second = task.enqueue(3, 4)  # the dead connection is replaced, the call retried
    assert {first.status, second.status} == {"queued"}


def test_enqueue_fails_clearly_while_redis_is_down(private_redis):
    server = private_redis()
    app = App(server.url)
    task = app.task(add.fn, name="t:add")
    task.enqueue(1, 2)
    server.kill()
    with pytest.raises(redis.ConnectionError):
        task.enqueue(3, 4)  # nothing is buffered in memory
    server.start()
    assert app.queue("default").counts()["queued"] == 1


@pytest.mark.parametrize(
    "url, shown",
    [
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("redis://:secret@host:6379", "redis://***@host:6379"),
        ("rediss://user:secret@host:6380/1", "rediss://user:***@host:6380/1"),
        ("unix:///tmp/r.sock", "unix:///tmp/r.sock"),
        ("tarefa:secret@host:6379", "tarefa:***@host:6379"),  # the scheme forgotten
        (":secret@host:6379/0", "***@host:6379/0"),
    ],
)
def test_redacted_hides_passwords(url, shown):
    assert redacted(url) == shown
