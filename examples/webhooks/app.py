"""A webhook receiver that answers at once and leaves the work to tarefa.

    uvicorn examples.webhooks.app:api

POST /webhooks checks the sender's signature, saves the event and enqueues
its processing, then answers 200: a sender that waits too long (Stripe gives
up after some seconds) sends the event again. The dashboard is at
/admin/queues, for those who hold ADMIN_TOKEN.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tarefa.contrib.fastapi import lifespan, mount_dashboard

from .tasks import app, create_tables, process_event, save_event

SIGNATURE_HEADER = "x-signature"  # "sha256=" and the hex HMAC-SHA256 of the raw body

# A smaller number runs sooner; every event gets one, since jobs with no
# priority would run before all prioritized ones.
PRIORITIES = {"payment.succeeded": 1, "payment.failed": 1}
DEFAULT_PRIORITY = 10


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


bearer = HTTPBearer(auto_error=False)


def staff(token: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
    expected = os.environ.get("ADMIN_TOKEN", "")
    if not (expected and token and hmac.compare_digest(token.credentials, expected)):
        raise HTTPException(401, "admin token required", headers={"WWW-Authenticate": "Bearer"})


@asynccontextmanager
async def tables(api: FastAPI):
    create_tables()
    yield


api = FastAPI(lifespan=lifespan(app, tables))  # closes tarefa's connections at shutdown
mount_dashboard(api, app, "/admin/queues", dependencies=[Depends(staff)])


@api.post("/webhooks")
async def receive(request: Request) -> dict:
    body = await request.body()  # the raw bytes: the signature is over them, not over parsed JSON
    expected = sign(body, os.environ["WEBHOOK_SECRET"])
    if not hmac.compare_digest(request.headers.get(SIGNATURE_HEADER, ""), expected):
        raise HTTPException(401, "bad signature")
    try:
        event = json.loads(body)
        event_id, event_type = str(event["id"]), str(event["type"])
        event.setdefault("data", {})
    except (ValueError, TypeError, KeyError) as error:
        raise HTTPException(400, f"not an event: {error}") from None

    await asyncio.to_thread(save_event, event_id, event_type, json.dumps(event))
    # The sender's event id is the job id: a re-delivered event finds its job
    # (queued, running, or done and kept) and adds nothing.
    job = await process_event.with_options(
        job_id=event_id, priority=PRIORITIES.get(event_type, DEFAULT_PRIORITY)
    ).aenqueue(event_id)
    return {"received": True, "job": job.id, "duplicate": not job.created}
