"""A rolling deploy: the previous release (0.1.0) and this one share a Redis.
Jobs either one stored run under the other; their workers share a queue and
lose nothing, and run nothing twice but the jobs in flight at a kill; dead
letters and cancellations cross from one release to the other."""

from __future__ import annotations

import json

import pytest

from tarefa import JobState

from ..faults.conftest import HOST, Ledger
from ..waits import PATIENCE, wait_for_list
from .tasks import BROKEN, HELD, STARTS, STOPPED

BOTH_WAYS = pytest.mark.parametrize(
    "first, then", [("previous", "current"), ("current", "previous")],
    ids=["0.1.0 then this", "this then 0.1.0"],
)  # fmt: skip


@BOTH_WAYS
def test_jobs_one_release_enqueued_run_under_the_other(deploy, first, then):
    jobs = deploy.produce(deploy.releases[first], "mix", "x-")
    delayed = deploy.app.job(jobs["delayed"][0], queue="default")
    assert delayed.status is JobState.SCHEDULED
    traced = deploy.app.store.clients.sync.hexists(f"tarefa:{{default}}:job:{delayed.id}", "trace")
    assert traced is (first == "current")  # this release's jobs carry their trace context
    worker = deploy.start_worker(deploy.releases[then])
    for label, (job_id, expected) in jobs.items():
        job = deploy.app.job(job_id, queue="default")
        assert job.result(timeout=PATIENCE) == expected, label
        assert job.info().worker.startswith(f"{HOST}:{worker.pid}:"), label
    assert jobs["job_id"][0] == "x-fixed"
    ledger = Ledger.read(deploy.ledger)
    ids = [job_id for job_id, _ in jobs.values()]
    assert {i: ledger.ends[i] for i in ids} == dict.fromkeys(ids, 1)  # each ran once...
    assert {pid for i in ids for _, pid in ledger.ended[i]} == {worker.pid}  # ...there


def test_workers_of_both_releases_share_a_queue_and_lose_nothing_to_a_kill(deploy):
    previous, current = deploy.releases["previous"], deploy.releases["current"]
    deploy.jobs += deploy.produce(previous, "work", "500", "100")
    deploy.jobs += deploy.produce(current, "work", "500", "100")
    workers = deploy.start_workers([previous, current] * 2)  # 40 jobs at a time: 2.5 s of work
    deploy.wait_until(lambda: deploy.ledger.llen(STARTS) >= 300, what="300 jobs to start")
    assert deploy.unsettled() > 100, "the jobs ran out: a kill now would test nothing"
    fault = deploy.kill(workers[0])  # one of 0.1.0's, its leases in flight
    assert fault.in_flight, "the kill cut no job short: it tested nothing"

    stuck = deploy.wait_until_settled(90)
    ledger = Ledger.read(deploy.ledger)
    lost = [i for i in deploy.jobs if ledger.ends[i] == 0]
    duplicated = {i for i, n in ledger.ends.items() if n > 1}
    # In flight at the kill (the jobs it leased, or running in it then), or a
    # job whose lease ran out (a worker starved of CPU: its record shows it).
    fault.in_flight |= ledger.running(fault.start, fault.start, workers[0].pid)
    allowed = fault.in_flight | deploy.stalled(duplicated)
    assert not lost, f"{len(lost)} jobs never ran to the end, e.g. {lost[:3]}"
    assert duplicated <= allowed, f"ran twice, not in flight at the kill: {duplicated - allowed}"
    assert stuck == 0, f"{stuck} jobs still unsettled"
    counts = deploy.app.queue("default").counts()
    assert (counts["completed"], counts["failed"]) == (1000, 0), counts
    # Both releases did their share, and recovered the killed worker's jobs.
    ran_in = {pid for ends in ledger.ended.values() for _, pid in ends}
    assert {w.pid for w in workers[1:]} <= ran_in


@BOTH_WAYS
def test_dead_letters_of_one_release_are_listed_and_retried_by_the_other(deploy, first, then):
    maker, fixer = deploy.releases[first], deploy.releases[then]
    deploy.ledger.set(BROKEN, 1)
    ids = deploy.produce(maker, "flaky", "3")
    deploy.burst(maker)
    listed = json.loads(deploy.cli(fixer, "jobs", "default", "--state", "failed", "--json"))
    assert sorted(job["id"] for job in listed["jobs"]) == sorted(ids)
    assert {job["error"]["type"] for job in listed["jobs"]} == {"RuntimeError"}
    assert {job.id for job in deploy.app.queue("default").failed_jobs()} == set(ids)

    deploy.ledger.delete(BROKEN)
    deploy.cli(fixer, "retry", ids[0])
    assert "2 failed jobs of default queued again" in deploy.cli(
        fixer, "retry", "--all-failed", "default"
    )
    deploy.burst(fixer)
    results = [deploy.app.job(i, queue="default").result(timeout=PATIENCE) for i in ids]
    assert results == ["0", "1", "2"]


@BOTH_WAYS
def test_a_job_cancelled_by_one_release_while_the_other_runs_it_ends_cancelled(deploy, first, then):
    runner, canceller = deploy.releases[first], deploy.releases[then]
    worker = deploy.start_worker(runner)
    job_id = deploy.produce(canceller, "hold", "h")
    assert wait_for_list(deploy.ledger, HELD, 1) == ["h"]
    assert f"job {job_id} cancelled" in deploy.cli(canceller, "cancel", job_id)
    # The runner's heartbeat learns it lost the lease, the job stops, and the
    # outcome it reports is discarded.
    assert wait_for_list(deploy.ledger, STOPPED, 1) == ["h"]
    deploy.wait_until(
        lambda: "outcome discarded" in worker.log_path.read_text(),
        what="the runner to report the stopped job's outcome",
    )
    for release in (runner, canceller):
        shown = json.loads(deploy.cli(release, "job", job_id, "--json"))
        assert shown["state"] == "cancelled", release.name
    assert deploy.app.job(job_id, queue="default").status is JobState.CANCELLED
    assert Ledger.read(deploy.ledger).ends[job_id] == 0
