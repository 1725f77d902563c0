"""Many producers enqueue the same job ids at the same moment: each id makes
one job, which runs once."""

from __future__ import annotations

import os
import subprocess
import sys

from tarefa.task import new_job_id

from ..conftest import PYTHONPATH, ROOT
from ..waits import PATIENCE

# Each producer waits for the start signal, then enqueues every id, in its own order.
PRODUCER = """
import os, random, sys
import redis
from tarefa import App
ids = sys.argv[1].split(",")
random.Random(int(sys.argv[2])).shuffle(ids)
task = App(os.environ["TAREFA_URL"]).by_name("tests.faults.tasks:work")
redis.Redis.from_url(os.environ["TAREFA_LEDGER_URL"]).blpop(["faults:go"], 30)
for job_id in ids:
    task.with_options(job_id=job_id).enqueue(1)
"""


def test_the_same_job_ids_from_many_producers_at_once(harness):
    h = harness
    ids = [new_job_id() for _ in range(300)]
    env = {"PYTHONPATH": PYTHONPATH, "TAREFA_URL": h.server.url}
    producers = [
        subprocess.Popen(
            [sys.executable, "-c", PRODUCER, ",".join(ids), str(seed)],
            cwd=ROOT,
            env=dict(os.environ, **env),
        )
        for seed in range(8)
    ]
    h.spawn("-c", "8")
    h.spawn("-c", "8")
    h.ledger.rpush("faults:go", *["go"] * len(producers))  # all at once
    assert [p.wait(PATIENCE) for p in producers] == [0] * len(producers)
    h.jobs.extend(ids)
    ledger = h.account(f"8. the same {len(ids)} ids from {len(producers)} producers")
    # Once each, and once more only per stall: a worker starved of CPU past its
    # lease has its job run again, which the job's record counts. An id that
    # made two jobs would run twice with no stall.
    stalls = [int(h.redis.hget(h.keys.job(i), "stalls") or 0) for i in ids]
    assert all(ledger.ends[i] <= 1 + n for i, n in zip(ids, stalls, strict=True)), (
        "an id ran more than once"
    )
    assert sum(h.app.queue("default").counts().values()) == len(ids)
