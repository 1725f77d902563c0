"""The webhook's slow work, run by a tarefa worker:

    tarefa worker examples.webhooks.tasks:app -q webhooks

Events and what was done for them live in SQLite (``WEBHOOKS_DB``). A job
carries only the event's id and reads the event from the database, so a
job stays small and a retry sees the event as it was saved.
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import closing

from tarefa import App, current_job

app = App()  # Redis from TAREFA_URL

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY, type TEXT NOT NULL, body TEXT NOT NULL,
    received_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS actions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, action TEXT NOT NULL,
    UNIQUE (event_id, action)
);
"""


def connect() -> sqlite3.Connection:
    # The web app and the workers write to the same file: wait for each
    # other's locks rather than fail.
    db = sqlite3.connect(os.environ.get("WEBHOOKS_DB", "webhooks.db"), timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    return db


def create_tables() -> None:
    with closing(connect()) as db:
        db.executescript(SCHEMA)


def save_event(event_id: str, event_type: str, body: str) -> None:
    with closing(connect()) as db, db:
        db.execute(
            "INSERT OR IGNORE INTO events (id, type, body) VALUES (?, ?, ?)",
            (event_id, event_type, body),
        )


def actions(event_id: str | None = None) -> list[tuple[str, str]]:
    """What the jobs did, in the order they did it: (event id, action)."""
    query = "SELECT event_id, action FROM actions"
    args: tuple[str, ...] = ()
    if event_id is not None:
        query, args = query + " WHERE event_id = ?", (event_id,)
    with closing(connect()) as db:
        return db.execute(query + " ORDER BY seq", args).fetchall()


def record(event_id: str, action: str) -> None:
    # Stands in for the real call (an e-mail API, the CRM's, Slack's). The
    # UNIQUE constraint makes a retried step harmless: a retry runs every
    # step again, and one that already ran must not e-mail twice.
    with closing(connect()) as db, db:
        db.execute(
            "INSERT OR IGNORE INTO actions (event_id, action) VALUES (?, ?)", (event_id, action)
        )


def send_email(event: dict) -> None:
    record(event["id"], f"email to {event['data'].get('email', 'unknown')}")


def update_crm(event: dict) -> None:
    if event["data"].get("crm_down_for", 0) >= current_job().attempt:
        raise ConnectionError("CRM unavailable")  # a transient failure: retried with back-off
    record(event["id"], "crm updated")


def notify(event: dict) -> None:
    record(event["id"], f"notified #sales of {event['type']}")


HANDLERS = {
    "payment.succeeded": [send_email, update_crm, notify],
    "payment.failed": [send_email, notify],
    "customer.created": [update_crm],
}


@app.task(queue="webhooks", retries=5, backoff=2)
def process_event(event_id: str) -> list[str]:
    with closing(connect()) as db:
        row = db.execute("SELECT body FROM events WHERE id = ?", (event_id,)).fetchone()
    event = json.loads(row[0])
    steps = HANDLERS.get(event["type"], [notify])
    for step in steps:
        step(event)
    return [step.__name__ for step in steps]
