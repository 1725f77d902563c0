"""``tarefa demo``: a few hundred jobs shaped like a web team's background work.

E-mails, webhooks (some endpoints flaky, so they retry), CRM syncs and
documents processed page by page (one corrupt, so it ends in the dead-letter
set), run by one worker while a progress bar follows them. It uses whatever
Redis the App finds: the embedded default unless TAREFA_URL is set.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from . import App, Retry, current_job
from .store import Embedded, redacted
from .worker import Worker

app = App()
QUEUES = ["demo.emails", "demo.webhooks", "demo.crm", "demo.documents"]


@app.task(queue="demo.emails", retries=3, backoff=0.05)
async def send_email(to: str, subject: str) -> str:
    await asyncio.sleep(random.uniform(0.005, 0.03))  # an SMTP round trip
    return f"sent to {to}"


@app.task(queue="demo.webhooks", retries=4, backoff=0.05)
def deliver_webhook(url: str, event: dict[str, Any]) -> int:
    time.sleep(random.uniform(0.01, 0.04))  # a blocking HTTP client: runs in a thread
    if random.random() < 0.2:
        raise ConnectionError(f"{url} timed out")  # retried with back-off
    return 200


@app.task(queue="demo.crm", retries=3, backoff=0.05)
async def sync_crm(account_id: int) -> dict[str, Any]:
    await asyncio.sleep(0.02)
    if account_id % 25 == 0 and current_job().attempt == 1:
        raise Retry(delay=0.1, reason="CRM rate limit hit")
    return {"account": account_id, "synced": True}


@app.task(queue="demo.documents", retries=2, backoff=0.05)
async def process_document(doc_id: int, pages: int) -> dict[str, Any]:
    for page in range(pages):
        await asyncio.sleep(0.005)  # OCR one page
        if doc_id == 13 and page == 2:
            raise ValueError(f"document {doc_id}: page {page + 1} is not a valid PDF page")
    current_job().logger.debug("document %s: %s pages", doc_id, pages)
    return {"doc": doc_id, "pages": pages}


def enqueue_all() -> int:
    emails = send_email.enqueue_many(
        [(f"user{i}@example.com", "Your order shipped") for i in range(150)]
    )
    hooks = deliver_webhook.enqueue_many(
        [(f"https://hooks.example.com/{i}", {"type": "payment.success", "n": i}) for i in range(80)]
    )
    crm = sync_crm.enqueue_many([(i,) for i in range(1, 51)])
    docs = [process_document.enqueue(i, random.randint(3, 8)) for i in range(1, 21)]
    return len(emails) + len(hooks) + len(crm) + len(docs)


async def _follow(
    progress: Progress, bar: TaskID, total: int, worker_done: asyncio.Future[None]
) -> None:
    while not worker_done.done():
        counts = await asyncio.to_thread(_finished)
        progress.update(bar, completed=counts)
        await asyncio.sleep(0.1)  # screen refresh rate
    progress.update(bar, completed=await asyncio.to_thread(_finished))


def _finished() -> int:
    return sum(c["completed"] + c["failed"] for c in map(app.store.counts, QUEUES))


async def _run(total: int, console: Console) -> float:
    worker = Worker(app, QUEUES, concurrency=20, burst=True)
    columns = (TextColumn("running jobs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    started = time.perf_counter()
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("jobs", total=total)
        run = asyncio.create_task(worker.run())
        await _follow(progress, bar, total, run)
        await run
    return time.perf_counter() - started


def main(console: Console | None = None) -> None:
    from . import manage
    from .cli_tables import plain, queues_table

    console = console or Console()
    console.print(Text.assemble(("tarefa demo", "bold"), plain(f" on {redacted(app.store.url)}")))
    for queue in QUEUES:
        app.store.purge(queue)
    total = enqueue_all()
    console.print(f"enqueued {total} jobs: e-mails, webhooks, CRM syncs, documents")
    elapsed = asyncio.run(_run(total, console))
    console.print(queues_table([manage.queue_info(app, q) for q in QUEUES]))
    failed = app.queue("demo.documents").failed_jobs()
    for job in failed:
        error = job.error or {}
        console.print(
            plain(f"dead-letter: job {job.id}: {error.get('type')}: {error.get('message')}")
        )
    console.print(
        f"{total} jobs in {elapsed:.1f} s; failed ones stay in the dead-letter set "
        "until retried (job.retry())."
    )
    embedded = Embedded.here()
    if app.store.url == embedded.url:
        home = embedded.home
        console.print(
            plain(f"The embedded Redis server keeps running (in {home}), for the tarefa "
                  "commands that follow; stop it with: tarefa embedded stop")
        )  # fmt: skip
