"""The document pipeline's jobs, on two queues served by separate workers:

    tarefa worker examples.documents.tasks:app -q documents
    tarefa worker examples.documents.tasks:app -q cleanup

Documents are text files under ``DOCUMENTS_DIR``: ``uploads/{id}.txt`` as
uploaded, pages separated by form feeds; ``processed/{id}.json`` once
processed. A job carries the document's id, never its content.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

from tarefa import App, current_job

app = App()  # Redis from TAREFA_URL

DAY = 24 * 3600


def storage(kind: str) -> Path:
    folder = Path(os.environ.get("DOCUMENTS_DIR", "documents-data")) / kind
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def read_page(page: str) -> int:
    """Stands in for the slow part (OCR, an extraction service): a while per page."""
    await asyncio.sleep(float(os.environ.get("DOCUMENTS_PAGE_SECONDS", "1")))
    return len(page.split())


# An async task, so that its timeout and a cancel stop it where it waits. A
# timeout fails the attempt with TimeoutError, and it is retried like any
# other failure.
@app.task(queue="documents", timeout=600, retries=2, backoff=5)
async def process_document(doc_id: str) -> dict:
    pages = (storage("uploads") / f"{doc_id}.txt").read_text().split("\f")
    job = current_job()
    job.progress(0, f"0 of {len(pages)} pages")
    words = 0
    for done, page in enumerate(pages, 1):
        words += await read_page(page)
        job.progress(done / len(pages), f"{done} of {len(pages)} pages")
    summary = {"pages": len(pages), "words": words}
    (storage("processed") / f"{doc_id}.json").write_text(json.dumps(summary))
    return summary


# Every night at 02:00, run by whichever worker serves `cleanup`: uploads
# nobody processed within a day are abandoned.
@app.task(queue="cleanup", cron="0 2 * * *", tz="America/Sao_Paulo", retries=1)
def cleanup_uploads(max_age: float = DAY) -> list[str]:
    processed = {path.stem for path in storage("processed").glob("*.json")}
    deleted = []
    for upload in storage("uploads").glob("*.txt"):
        if upload.stem not in processed and time.time() - upload.stat().st_mtime > max_age:
            upload.unlink(missing_ok=True)
            deleted.append(upload.stem)
    current_job().logger.info("deleted %d abandoned uploads", len(deleted))
    return sorted(deleted)
