"""Jobs that span queues, whatever the backend (conftest.py): on a Redis
Cluster the queues below fall in different slots, on different masters, so
each step crosses from one master to another."""

from __future__ import annotations

import asyncio

from tarefa import Group, JobState

from ..tasks import add, always_fails, total

QUEUES = ("emails", "pdfs", "invoices", "search")  # slots on masters 1, 2, 3, 2
ENDED = (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)


def run_until_ended(backend, jobs, queues=QUEUES) -> None:
    """Run the queues' jobs until ``jobs`` have ended: a waiting job becomes
    ready only as its parents' ends are reported, after a burst started."""
    for _ in range(len(jobs) + 1):
        if all(
            job.status in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED) for job in jobs
        ):
            return
        backend.run_jobs(*queues)
    raise AssertionError(f"still running: {[(j.id, j.status) for j in jobs]}")


def test_a_chain_runs_step_by_step_across_queues(backend):
    first = add.with_options(queue="emails").enqueue(1, 2)
    second = first.then(add.with_options(queue="pdfs"), 3, 4)
    third = second.then(add.with_options(queue="invoices"), 5, 6)
    run_until_ended(backend, [third])
    assert [job.result(timeout=0) for job in (first, second, third)] == [3, 7, 11]


def test_a_group_over_every_queue_gives_its_callback_every_result_in_order(backend):
    members = [add.with_options(queue=q).enqueue(i, 10) for i, q in enumerate(QUEUES)]
    callback = Group(members).then(total.with_options(queue="search"), plus=1)
    run_until_ended(backend, [callback])
    assert callback.result(timeout=0) == sum(range(4)) + 40 + 1


def test_a_failed_parent_in_another_queue_cancels_its_chain(backend):
    parent = always_fails.with_options(queue="emails", retries=0).enqueue("no")
    child = parent.then(add.with_options(queue="invoices"), 1, 1)
    grandchild = child.then(add.with_options(queue="search"), 2, 2)
    run_until_ended(backend, [grandchild])
    assert parent.status is JobState.FAILED
    assert child.status is JobState.CANCELLED and grandchild.status is JobState.CANCELLED


def test_asyncio_producers_chain_across_queues_too(backend):
    async def produce():
        first = await add.with_options(queue="pdfs").aenqueue(2, 2)
        return first, await first.athen(add.with_options(queue="search"), 1, 1)

    first, second = asyncio.run(produce())
    run_until_ended(backend, [second])
    assert (first.result(timeout=0), second.result(timeout=0)) == (4, 2)
