"""Pickle is opt-in because unpickling runs code: a pickled payload or result
that someone wrote into Redis is never loaded by a JSON App's workers,
producers or dashboard; with pickle opted in, it would run in the worker."""

from __future__ import annotations

import asyncio
import os
import pickle

import pytest
from fastapi.testclient import TestClient

from tarefa import App, JobState
from tarefa.web.server import create_app
from tarefa.worker import Worker

from ..tasks import add


class Planted:
    """What a writer with access to Redis could send: unpickling it makes a
    directory (it could as well run a shell)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return os.mkdir, (self.path,)


def test_a_json_app_never_unpickles_what_someone_wrote_into_redis(app, run_worker, r, tmp_path):
    planted = tmp_path / "planted"
    payload = pickle.dumps(Planted(planted))
    app.store.enqueue("default", "forged", (0, 0, ""), ["task", add.name, "payload", payload])
    good = add.enqueue(1, 2)
    run_worker()
    forged = app.job("forged")
    assert forged.status is JobState.FAILED
    assert forged.error["type"] == "PayloadError" and "pickled" in forged.error["message"]
    assert good.result(timeout=1) == 3  # the worker went on

    # A forged result, read by a producer and by the dashboard.
    r.hset(f"tarefa:{{default}}:job:{good.id}", "result", payload)
    with pytest.raises(ValueError, match="pickled"):
        good.result(timeout=1)
    with TestClient(create_app(app), base_url="http://localhost") as client:
        for job_id in ("forged", good.id):
            shown = client.get(f"/api/v1/jobs/{job_id}")
            assert shown.status_code == 200
            assert "not shown" in shown.text
    assert not planted.exists()  # nothing was ever unpickled


def test_with_pickle_opted_in_a_payload_written_into_redis_runs_in_the_worker(
    redis_url, r, tmp_path
):
    """Why pickle is opt-in: only for a Redis nobody else can write to."""
    planted = tmp_path / "planted"
    app = App(redis_url, serializer="pickle")
    app.task(add.fn, name=add.name)
    payload = pickle.dumps(([Planted(planted), 1], {}))
    app.store.enqueue("default", "forged", (0, 0, ""), ["task", add.name, "payload", payload])
    asyncio.run(Worker(app, burst=True).run())
    assert planted.is_dir()  # the payload's code ran in the worker
    app.close()
