"""What an operator relies on, whatever the backend (conftest.py): a paused
queue holds its jobs, which can be cancelled or deleted; finished jobs can
be deleted; purge empties a queue."""

from __future__ import annotations

import pytest

from tarefa import Job, JobNotFound, JobState
from tarefa.errors import WrongState

from ..tasks import add, always_fails


def test_jobs_of_a_paused_queue_wait_and_can_be_cancelled_or_deleted(backend):
    queue = backend.app.queue("default")
    queue.pause()
    kept, cancelled, deleted = (add.enqueue(i, 1) for i in range(3))
    assert queue.counts()["queued"] == 3
    assert cancelled.cancel() is True and cancelled.status is JobState.CANCELLED
    assert deleted.delete() is True
    with pytest.raises(JobNotFound):
        deleted.info()
    assert deleted.delete() is False  # nothing left to delete
    queue.resume()
    backend.run_jobs()
    assert kept.result(timeout=0) == 1
    assert cancelled.cancel() is False  # it has ended
    assert queue.counts()["completed"] == 1


def test_a_finished_job_can_be_deleted(backend):
    done = add.enqueue(1, 1)
    failed = always_fails.with_options(retries=0).enqueue("for good")
    backend.run_jobs()
    assert done.delete() is True and failed.delete() is True
    counts = backend.app.queue("default").counts()
    assert counts["completed"] == counts["failed"] == 0


def test_purge_empties_a_queue(backend):
    queue = backend.app.queue("default")
    queue.pause()
    add.enqueue_many([(i, i) for i in range(3)])
    assert queue.purge() > 0
    assert sum(queue.counts().values()) == 0


def test_only_a_scheduled_job_can_run_now(backend):
    done = add.enqueue(1, 1)
    backend.run_jobs()
    with pytest.raises(WrongState, match=f"only a scheduled job can run now; job {done.id} is"):
        done.run_now()
    assert done.status is JobState.COMPLETED
    with pytest.raises(JobNotFound):
        Job(backend.app, "default", "nope").run_now()
