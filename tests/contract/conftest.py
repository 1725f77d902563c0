"""Every backend a producer or an operator can be given, behind one fixture:
the behaviour tests of this package run against each. A backend joins by
adding a parameter here (its App, and how its enqueued jobs get run):

- ``redis``: the session's single Redis;
- ``cluster``: a Redis Cluster of 3 masters with a replica each
  (``redis+cluster://``), where the tests' queues fall in different slots;
- ``sentinel``: a master with a replica, found through a sentinel
  (``redis+sentinel://``);
- ``testing``: testing mode, no Redis at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tarefa import App
from tarefa.worker import Worker

from ..waits import drain


@dataclass
class Backend:
    name: str
    app: App

    def run_jobs(self, *queues: str) -> None:
        """Run every ready job of ``queues`` (default: "default") to its end.
        In testing mode they ran when enqueued (or when their queue resumed)."""
        if self.name == "testing":
            return
        drain(Worker(self.app, queues or ("default",), burst=True, concurrency=4))


@pytest.fixture(params=["redis", "cluster", "sentinel", "testing"])
def backend(request: pytest.FixtureRequest, app: App, app_on) -> Iterator[Backend]:
    """The tests' App on a flushed real Redis (single, cluster or behind a
    sentinel), or in testing mode."""
    if request.param == "testing":
        with app.testing():
            yield Backend("testing", app)
        return
    if request.param == "redis":
        yield Backend("redis", app)
        return
    yield Backend(request.param, app_on(request.getfixturevalue(f"shared_{request.param}")))
