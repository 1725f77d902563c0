"""The limit on a job's serialized arguments: checked at the caller, before
anything is sent, for every way to enqueue, in testing mode too."""

from __future__ import annotations

import asyncio

import pytest

from tarefa import App, TarefaError
from tarefa.errors import PayloadTooLarge
from tarefa.store.keys import queue_keys

MIB = 1024 * 1024
OVERHEAD = len(b'[[""],{}]')  # store(doc)'s payload is [[doc], {}] in JSON


def make_app(url: str | None = None, **settings) -> tuple[App, object]:
    app = App(url, **settings)

    @app.task(name="docs:store")
    def store(doc: str) -> int:
        return len(doc)

    return app, store


@pytest.fixture
def docs(redis_url, r):
    app, store = make_app(redis_url)
    yield app, store
    app.close()


def test_the_default_limit_is_one_mib_of_serialized_arguments(docs):
    app, store = docs
    fits = "x" * (MIB - OVERHEAD)
    assert store.enqueue(fits).created
    with pytest.raises(PayloadTooLarge) as caught:
        store.enqueue(fits + "x")
    error = caught.value
    assert isinstance(error, ValueError) and isinstance(error, TarefaError)
    assert (error.task, error.size, error.limit) == ("docs:store", MIB + 1, MIB)
    message = str(error)
    assert "docs:store" in message and "1,048,577 bytes" in message and "1,048,576" in message
    assert "nothing was enqueued" in message and "App(max_payload_bytes=N)" in message
    assert app.queue("default").counts()["queued"] == 1  # only the one that fits


def test_aenqueue_and_enqueue_by_name_check_it_too(docs):
    app, store = docs
    big = "x" * (2 * MIB)
    with pytest.raises(PayloadTooLarge, match=f"{2 * MIB + OVERHEAD:,} bytes"):
        asyncio.run(store.aenqueue(big))
    with pytest.raises(PayloadTooLarge):
        app.enqueue("docs:store", big)
    with pytest.raises(PayloadTooLarge):  # a task this App knows by name only
        app.enqueue("elsewhere:task", big)
    assert app.queue("default").counts()["queued"] == 0


def test_one_call_too_big_and_none_of_the_batch_is_enqueued(docs):
    app, store = docs
    calls = [("small",)] * 1500 + [("x" * (2 * MIB),)] + [("small",)] * 10
    with pytest.raises(PayloadTooLarge, match=r"call #1500 of enqueue_many"):
        store.enqueue_many(calls)  # its first chunk of 1,000 was not sent either
    with pytest.raises(PayloadTooLarge, match=r"call #1500 of enqueue_many"):
        asyncio.run(store.aenqueue_many(calls))
    assert app.queue("default").counts()["queued"] == 0


def test_the_limit_is_set_per_app_and_none_lifts_it(redis_url, r):
    small_app, small = make_app(redis_url, max_payload_bytes=100)
    with pytest.raises(PayloadTooLarge, match="over the limit of 100"):
        small.enqueue("x" * 100)
    assert small.enqueue("x" * 50).created

    free_app, free = make_app(redis_url, max_payload_bytes=None)
    job = free.enqueue("x" * (2 * MIB))
    assert job.created and len(r.hget(queue_keys("default").job(job.id), "payload")) > 2 * MIB
    for app in (small_app, free_app):
        app.close()


@pytest.mark.parametrize("limit", [0, -1, 1.5, True, "1M"])
def test_a_bad_limit_is_refused(limit):
    with pytest.raises(ValueError, match="max_payload_bytes must be a positive int or None"):
        App("redis://localhost", max_payload_bytes=limit)


def test_testing_mode_applies_the_same_limit():
    app, store = make_app(max_payload_bytes=1000, testing=True)
    with pytest.raises(PayloadTooLarge, match="over the limit of 1,000"):
        store.enqueue("x" * 1000)
    with pytest.raises(PayloadTooLarge):
        store.enqueue_many([("ok",), ("x" * 1000,)])
    assert app.queue("default").counts()["completed"] == 0  # nothing ran
    assert store.enqueue("ok").result() == 2
