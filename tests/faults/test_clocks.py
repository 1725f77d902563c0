"""Clock skew between worker hosts: leases, recoveries and due times are
judged by Redis's clock, so a worker an hour ahead does not take over healthy
leases, one an hour behind does not sit on due jobs, and a dead worker's jobs
come back after one lease whatever the clocks of the others say."""

from __future__ import annotations

HOUR = 3600


def test_workers_an_hour_apart(harness):
    h = harness
    h.enqueue(2000, ms=50)
    ahead = h.spawn_ready("-c", "8", clock_skew=HOUR)
    h.spawn_ready("-c", "8", clock_skew=-HOUR)
    h.spawn_ready("-c", "8", clock_skew=90)
    # Delayed once the workers serve: due while they run, not while they start.
    delayed = h.app.by_name("tests.faults.tasks:work").with_options(delay=2)
    late = [delayed.enqueue(10).id for _ in range(30)]
    h.jobs.extend(late)
    for _ in range(2):
        h.wait_for_runs(200)
        h.kill(ahead)
        ahead = h.spawn_ready("-c", "8", clock_skew=HOUR)
    h.account("10. workers' clocks 1 h ahead, 1 h behind")

    # A worker an hour ahead that judged leases by its own clock would have
    # taken over every lease at once (duplicates outside the faults: the
    # account checks it). Due times: each delayed job became ready (joined the
    # back of the queue) 2 s after it was enqueued, on Redis's clock: not
    # before (a clock ahead), nor an hour after (a clock behind), and within
    # what a loaded machine takes to get to the next fetch.
    for job_id in late:
        job = h.redis.hmget(h.keys.job(job_id), "enqueued_at", "ready_at")
        waited_ms = int(job[1]) - int(job[0])
        assert 2000 <= waited_ms < 12_000, f"a delayed job became ready after {waited_ms} ms"
    assert all(f.in_flight for f in h.faults)
