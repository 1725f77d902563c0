"""Limits and keys with real worker processes: they hold across all workers,
and jobs held back wait without anyone polling for them."""

from __future__ import annotations

import pytest

from tarefa import JobState
from tarefa.store.keys import queue_keys

from ..tasks import app as tasks_app
from ..tasks import keyed_overlap, record
from ..waits import PATIENCE, wait_for_list


def evalsha_calls(r) -> int:
    return r.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)


def test_a_rate_limit_holds_across_two_worker_processes(app, r, spawn_worker):
    for _ in range(2):
        # Idle checks a minute apart: workers that slept toward them, not toward
        # the limit's next opening, would take minutes over the 40 jobs.
        spawn_worker("-q", "limited", "-c", "5", idle_check=60)
    jobs = record.with_options(queue="limited").enqueue_many([(f"j{i}",) for i in range(40)])
    wait_for_list(r, "test:runs", 10)
    calls_before = evalsha_calls(r)
    wait_for_list(r, "test:runs", 30)
    starts = sorted(job.info().started_at.timestamp() for job in jobs)
    # No window of one second ever holds more than 10 starts...
    for i, start in enumerate(starts):
        assert sum(1 for s in starts[i:] if s < start + 1.0) <= 10
    # ...so the 40 jobs took at least 3 s (and seconds more at most, on a loaded machine)...
    span = starts[-1] - starts[0]
    assert 2.9 < span < 20, [round(s - starts[0], 3) for s in starts]
    # ...and the workers waited for the limit instead of polling it: a few calls
    # per worker per second (fetches, heartbeats), not thousands.
    assert evalsha_calls(r) - calls_before < 200


def test_a_key_concurrency_limit_holds_across_workers_and_keys_run_side_by_side(
    app, r, spawn_worker
):
    for _ in range(2):
        spawn_worker("-q", "per-key", "-c", "4")
    jobs = []
    for key in ("acct-1", "acct-2"):
        jobs += keyed_overlap.with_options(key=key).enqueue_many([(key,)] * 6)
    for job in jobs:
        job.result(PATIENCE)
    for key in ("acct-1", "acct-2"):
        overlap = [int(x) for x in r.lrange(f"test:overlap:{key}", 0, -1)]
        assert len(overlap) == 6 and max(overlap) == 2  # never 3, and 2 did overlap
    assert r.hlen(queue_keys("per-key").lane_active) == 0  # every place given back


def test_key_throttle_and_debounce_through_the_task_api(app, run_worker, r):
    throttled = record.with_options(key="acct-9", throttle=60)
    first = throttled.enqueue("first")
    again = throttled.enqueue("again")
    assert first.created and not again.created and again.id == first.id
    other_key = record.with_options(key="acct-8", throttle=60).enqueue("other")
    assert other_key.created and other_key.id != first.id

    # A window that outlasts a pause of the test between its two calls (a
    # loaded machine): the second must find the first still waiting.
    debounced = record.with_options(debounce=1)
    one = debounced.enqueue("one")
    two = debounced.enqueue("two")
    assert two.id == one.id and not two.created and one.status is JobState.SCHEDULED
    run_worker()
    assert one.result(0) == "two"  # one job ran, with the last call's arguments
    assert sorted(x.decode() for x in r.lrange("test:runs", 0, -1)) == ["first", "other", "two"]


def test_bad_flow_control_options_fail_where_they_are_given(app):
    with pytest.raises(ValueError, match="no priority"):
        record.with_options(key="k", priority=1)
    with pytest.raises(ValueError, match="key must be"):
        record.with_options(key="")
    with pytest.raises(ValueError, match="key must be"):
        record.with_options(key=42)
    with pytest.raises(ValueError, match="job_id"):
        record.with_options(throttle=5, job_id="x")
    with pytest.raises(ValueError, match="not both"):
        record.with_options(throttle=5, debounce=5)
    with pytest.raises(ValueError, match="throttle must be positive"):
        record.with_options(throttle=0)
    with pytest.raises(ValueError, match="cannot throttle"):
        record.with_options(throttle=5).enqueue_many([("a",)])
    with pytest.raises(ValueError, match="rate_limit must look like"):
        tasks_app.configure_queue("x", rate_limit="lots")
    with pytest.raises(ValueError, match="invalid queue name"):
        tasks_app.configure_queue("no spaces", rate_limit="1/s")
