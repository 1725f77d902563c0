"""Faults of the jobs themselves, and of their input, among jobs that behave:
each bad one fails with an error that says why (after its retries, if it may
have them), no worker dies of it, and every good job runs once."""

from __future__ import annotations

import pytest

from tarefa import PayloadTooLarge

from .conftest import Fault


def bad_job(h, task: str, args: tuple = ()) -> str:
    """Enqueue one misbehaving job among good ones; it counts as a fault."""
    h.enqueue(150, ms=5)
    [job_id] = h.enqueue(1, task=task, args=args)
    at = h.now()
    h.faults.append(Fault(at, at))  # nothing in flight: only the job itself may fail
    return job_id


def failed_with(h, job_id: str) -> tuple[str, int, str]:
    info = h.app.job(job_id, "default").info()
    assert info.state == "failed", info
    return info.error["type"], info.attempts, info.error["message"]


def test_jobs_that_crash_hang_or_grow_in_the_process_pool(harness):
    """In the process pool, with a memory limit: jobs that end their own
    process (os._exit, a segfault), that never return (a timeout of 1 s), and
    that allocate without bound (past --max-memory)."""
    h = harness
    bad = {}
    for _ in range(2):
        bad[bad_job(h, "crash", ("exit",))] = ("WorkerProcessDied", 1, "exit code 13")
        bad[bad_job(h, "crash", ("segfault",))] = ("WorkerProcessDied", 1, "SIGSEGV")
        bad[bad_job(h, "hang")] = ("TimeoutError", 2, "did not finish within 1")
        bad[bad_job(h, "hog")] = ("WorkerProcessDied", 2, "more than the worker's max memory")
    workers = [h.spawn("--pool", "process", "--max-memory", "256M", "-c", "4") for _ in range(3)]
    h.account("6. jobs crash, hang, grow (process pool)", may_fail=set(bad))
    for job_id, (error_type, attempts, says) in bad.items():
        assert failed_with(h, job_id)[:2] == (error_type, attempts)
        assert says in failed_with(h, job_id)[2]
    assert all(w.poll() is None for w in workers), "a worker died of a job's process"


def test_input_that_cannot_run(harness):
    """Payloads that do not decode, a task no worker knows, arguments that no
    longer fit the function, a result JSON cannot hold; and a payload over the
    size limit, refused at the producer with nothing enqueued."""
    h = harness
    bad = {}
    for n in range(2):
        h.enqueue(150, ms=5)
        for garbage in (b"\xff\xfe not json", b'{"not": "[args, kwargs]"}'):
            job_id = f"garbage-{n}-{len(bad)}"
            fields = ["task", "tests.faults.tasks:work", "payload", garbage]
            h.app.store.enqueue("default", job_id, (0, 0, ""), fields)
            bad[job_id] = "PayloadError"
        bad[h.app.by_name("tests.faults.tasks:renamed_since").enqueue().id] = "UnknownTask"
        bad[bad_job(h, "work", (1, "a second argument it no longer takes"))] = "ArgumentError"
        bad[bad_job(h, "unstorable")] = "ResultError"
    for job_id in bad.keys() - set(h.jobs):  # enqueued by hand: faults too
        h.jobs.append(job_id)
        h.faults.append(Fault(h.now(), h.now()))
    before = h.app.queue("default").counts()["queued"]
    with pytest.raises(PayloadTooLarge):
        h.app.by_name("tests.faults.tasks:work").enqueue("x" * (2 << 20))
    h.faults.append(Fault(h.now(), h.now()))
    assert h.app.queue("default").counts()["queued"] == before  # nothing half-enqueued
    workers = [h.spawn("-c", "8") for _ in range(3)]
    h.account("7. input that cannot run, and a payload too large", may_fail=set(bad))
    for job_id, error_type in bad.items():
        assert failed_with(h, job_id)[:2] == (error_type, 1)  # at once: retrying cannot help
    assert all(w.poll() is None for w in workers), "a worker died of bad input"
