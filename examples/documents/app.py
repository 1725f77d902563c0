"""The document pipeline's HTTP API.

    uvicorn examples.documents.app:api

PUT /documents/{id} uploads a text, POST /documents/{id}/process enqueues its
processing, GET /documents/{id}/status follows it, DELETE
/documents/{id}/process cancels it. tarefa's own REST API and dashboard are
at /admin/queues, for those who hold ADMIN_TOKEN.
"""

from __future__ import annotations

import hmac
import os
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tarefa import JobNotFound, JobState
from tarefa.contrib.fastapi import lifespan, mount_dashboard

from .tasks import app, process_document, storage

DocId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]  # it names a file
bearer = HTTPBearer(auto_error=False)


def staff(token: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
    expected = os.environ.get("ADMIN_TOKEN", "")
    if not (expected and token and hmac.compare_digest(token.credentials, expected)):
        raise HTTPException(401, "admin token required", headers={"WWW-Authenticate": "Bearer"})


api = FastAPI(lifespan=lifespan(app))  # closes tarefa's connections at shutdown
mount_dashboard(api, app, "/admin/queues", dependencies=[Depends(staff)])


def job_id(doc_id: str) -> str:
    # One job per document at a time: a second POST while it is queued or
    # running gets the same job instead of processing the document twice.
    return f"document-{doc_id}"


@api.put("/documents/{doc_id}", status_code=201)
async def upload(doc_id: DocId, request: Request) -> dict:
    (storage("uploads") / f"{doc_id}.txt").write_bytes(await request.body())
    return {"document_id": doc_id}


@api.post("/documents/{doc_id}/process", status_code=202)
def process(doc_id: DocId) -> dict:
    if not (storage("uploads") / f"{doc_id}.txt").exists():
        raise HTTPException(404, f"no document {doc_id!r}")
    job = process_document.with_options(job_id=job_id(doc_id)).enqueue(doc_id)
    if not job.created and job.status.is_final:
        job.delete()  # processed before (its record kept a while): this is a new request
        job = process_document.with_options(job_id=job_id(doc_id)).enqueue(doc_id)
    return {"job_id": job.id, "status": job.status}


@api.get("/documents/{doc_id}/status")
def status(doc_id: DocId) -> dict:
    try:
        info = app.job(job_id(doc_id), queue="documents").info()
    except JobNotFound:
        raise HTTPException(404, f"document {doc_id!r} was not sent to processing") from None
    answer = {"status": info.state, "attempts": info.attempts, "progress": info.progress}
    if info.state is JobState.COMPLETED:
        answer["result"] = app.job(info.id, queue="documents").result()
    elif info.error:
        answer["error"] = f"{info.error['type']}: {info.error['message']}"
    return answer


@api.delete("/documents/{doc_id}/process")
def cancel(doc_id: DocId) -> dict:
    try:
        job = app.job(job_id(doc_id), queue="documents")
    except JobNotFound:
        raise HTTPException(404, f"document {doc_id!r} was not sent to processing") from None
    return {"cancelled": job.cancel()}
