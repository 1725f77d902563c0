"""examples/documents, run for real: its API over HTTP (TestClient), a real
Redis, and workers as processes (`tarefa worker ... -q documents`, `-q
cleanup`) or, where the test holds a page, in a thread."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from examples.documents import tasks
from examples.documents.app import api
from tarefa import JobState
from tarefa.worker import Worker

from ..waits import PATIENCE, wait_until

ADMIN = {"authorization": "Bearer admin-token"}
QUEUES = "/admin/queues/api/v1"
TEXT = "first page\fsecond page here\fthird"  # 3 pages, 6 words


@pytest.fixture
def client(r, tmp_path, monkeypatch):
    # Set before a worker is spawned: it inherits them.
    monkeypatch.setenv("DOCUMENTS_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ADMIN_TOKEN", "admin-token")
    # Fresh clients on the flushed Redis: a store remembers the queues it
    # registered there (as the suite's `app` fixture does for tests.tasks).
    tasks.app._store = None
    with TestClient(api) as client:
        yield client


@pytest.fixture
def worker(spawn_worker, monkeypatch):
    """`tarefa worker examples.documents.tasks:app -q QUEUE`, whose pages take
    ``page_seconds`` each."""

    def start(queue: str, page_seconds: float = 0):
        monkeypatch.setenv("DOCUMENTS_PAGE_SECONDS", str(page_seconds))
        return spawn_worker("-q", queue, app="examples.documents.tasks:app")

    return start


def upload(client, doc_id: str, text: str = TEXT) -> None:
    assert client.put(f"/documents/{doc_id}", content=text.encode()).status_code == 201


def status(client, doc_id: str) -> dict:
    answer = client.get(f"/documents/{doc_id}/status")
    assert answer.status_code == 200, answer.text
    return answer.json()


def status_is(client, doc_id: str, state: str, message: str | None = None):
    """The status once it is ``state`` (with that progress message), else None."""
    now = status(client, doc_id)
    if now["status"] == state and (
        message is None or (now["progress"] or {}).get("message") == message
    ):
        return now
    return None


def test_processing_reports_progress_page_by_page_then_completes(client, monkeypatch):
    # The worker runs in a thread here, so that the test can hold each page
    # until it has seen the progress before it.
    pages = threading.Semaphore(0)
    real_read_page = tasks.read_page

    async def held_page(page: str) -> int:
        assert await asyncio.to_thread(pages.acquire, timeout=PATIENCE)
        return await real_read_page(page)

    monkeypatch.setattr(tasks, "read_page", held_page)
    monkeypatch.setenv("DOCUMENTS_PAGE_SECONDS", "0")
    upload(client, "contract-1")
    answer = client.post("/documents/contract-1/process")
    assert answer.status_code == 202
    assert answer.json() == {"job_id": "document-contract-1", "status": "queued"}
    assert status(client, "contract-1")["status"] == "queued"

    worker = Worker(tasks.app, ["documents"], concurrency=2)
    thread = threading.Thread(target=asyncio.run, args=(worker.run(),))
    thread.start()
    try:
        seen = wait_until(lambda: status_is(client, "contract-1", "active", "0 of 3 pages"), "0/3")
        assert seen["progress"]["value"] == 0
        for done in (1, 2):
            pages.release()
            seen = wait_until(
                lambda d=done: status_is(client, "contract-1", "active", f"{d} of 3 pages"),
                f"page {done} done",
            )
            assert seen["progress"]["value"] == pytest.approx(done / 3)
        pages.release()
        final = wait_until(lambda: status_is(client, "contract-1", "completed"), "completed")
    finally:
        pages.release(10)  # nothing left held if the test failed midway
        worker.stop()
        thread.join(PATIENCE)
    assert final["result"] == {"pages": 3, "words": 6}
    assert final["progress"]["value"] == 1 and final["attempts"] == 1
    written = tasks.storage("processed") / "contract-1.json"
    assert json.loads(written.read_text()) == {"pages": 3, "words": 6}


def test_each_worker_serves_only_its_queues(client, worker):
    upload(client, "invoice-1")
    cleanup = tasks.cleanup_uploads.enqueue()
    worker("documents")
    client.post("/documents/invoice-1/process")
    wait_until(lambda: status_is(client, "invoice-1", "completed"), "the document processed")
    # The documents worker neither took the cleanup job nor keeps cleanup's cron.
    assert cleanup.status is JobState.QUEUED
    assert tasks.app.queue("cleanup").counts()["scheduled"] == 0

    worker("cleanup")
    assert cleanup.result(timeout=PATIENCE) == []


def test_a_document_past_its_timeout_fails_with_a_timeout_error_after_its_retries(client, worker):
    upload(client, "huge")
    worker("documents", page_seconds=3600)
    # The task's own retries (2), with a timeout and back-off a test can wait for.
    job = tasks.process_document.with_options(
        job_id="document-huge", timeout=0.5, backoff=0.05
    ).enqueue("huge")
    wait_until(lambda: job.status is JobState.FAILED, "the job failed for good")
    now = status(client, "huge")
    assert now["status"] == "failed" and now["attempts"] == 3
    assert now["error"].startswith("TimeoutError")
    assert now["progress"]["message"] == "0 of 3 pages"  # it never got past the first page


@pytest.mark.parametrize("how", ["the app's DELETE", "tarefa's REST API"])
def test_a_running_document_job_is_cancelled(client, worker, how):
    upload(client, "report")
    worker("documents", page_seconds=3600)
    job_id = client.post("/documents/report/process").json()["job_id"]
    wait_until(lambda: status_is(client, "report", "active", "0 of 3 pages"), "it to start")
    if how == "the app's DELETE":
        assert client.delete("/documents/report/process").json() == {"cancelled": True}
    else:
        answer = client.post(f"{QUEUES}/jobs/{job_id}/cancel", headers=ADMIN)
        assert answer.status_code == 200, answer.text
    wait_until(lambda: status_is(client, "report", "cancelled"), "the job cancelled")
    assert not (tasks.storage("processed") / "report.json").exists()
    # Sent anew, the document gets a new job, not the cancelled one's record.
    again = client.post("/documents/report/process").json()
    assert again["job_id"] == job_id and again["status"] in ("queued", "active")


def test_the_cleanup_cron_runs_when_its_tick_is_run_now(client, worker):
    upload(client, "abandoned")
    upload(client, "kept")  # processed: not abandoned, however old
    upload(client, "fresh")  # not a day old yet
    (tasks.storage("processed") / "kept.json").write_text("{}")
    two_days_ago = time.time() - 2 * tasks.DAY
    for name in ("abandoned", "kept"):
        os.utime(tasks.storage("uploads") / f"{name}.txt", (two_days_ago, two_days_ago))

    worker("cleanup")  # keeps the next 02:00 tick scheduled
    scheduled = wait_until(
        lambda: (
            client.get(f"{QUEUES}/queues/cleanup/jobs?state=scheduled", headers=ADMIN)
            .json()
            .get("jobs")
        ),
        "the cron tick scheduled",
    )
    [tick] = scheduled
    assert tick["task"] == "examples.documents.tasks:cleanup_uploads"
    ran = client.post(f"{QUEUES}/jobs/{quote(tick['id'], safe='')}/run-now", headers=ADMIN)
    assert ran.status_code == 200, ran.text

    assert tasks.app.job(tick["id"], queue="cleanup").result(timeout=PATIENCE) == ["abandoned"]
    left = sorted(path.stem for path in tasks.storage("uploads").glob("*.txt"))
    assert left == ["fresh", "kept"]


def test_tarefas_rest_api_lists_the_queues_for_staff_only(client):
    upload(client, "memo")
    client.post("/documents/memo/process")
    tasks.cleanup_uploads.enqueue()
    assert client.get(f"{QUEUES}/queues").status_code == 401
    queues = {q["name"]: q for q in client.get(f"{QUEUES}/queues", headers=ADMIN).json()}
    assert {name: q["counts"]["queued"] for name, q in queues.items()} == {
        "documents": 1,
        "cleanup": 1,
    }
    listed = client.get(f"{QUEUES}/queues/documents/jobs?state=queued", headers=ADMIN).json()
    assert [job["id"] for job in listed["jobs"]] == ["document-memo"]
    assert client.get(f"{QUEUES}/health").status_code in (200, 503)  # open, for a load balancer
