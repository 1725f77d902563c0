"""Faults of the workers: killed, stopped for a deploy, frozen, and taken down
by their own jobs."""

from __future__ import annotations

import random
import signal

from tarefa.worker.shutdown import AFTER_GRACE

from .conftest import Fault

SEED = 6  # victims are chosen at random, the same way on every run


def test_sigkill_workers_mid_batch_again_and_again(harness):
    h = harness
    h.enqueue(2400, ms=50)
    h.enqueue(800, ms=50, task="awork")
    for _ in range(3):
        h.spawn_ready("-c", "8")
    rng = random.Random(SEED)
    for _ in range(8):
        h.keep_stocked(800, ms=50)
        h.wait_for_runs(100)  # some work between kills
        h.kill(rng.choice(h.running()))
        h.spawn_ready("-c", "8")
    h.account("1. SIGKILL a worker mid-batch (3 workers)")
    assert all(f.in_flight for f in h.faults), "a kill that cut no job short tests nothing"


def test_sigterm_during_long_jobs_drains_or_hands_back(harness):
    """A rolling deploy: each worker in turn gets SIGTERM and a replacement.
    Jobs shorter than the grace period finish; longer ones are handed back and
    run again from the start elsewhere."""
    h = harness
    for _ in range(20):
        h.enqueue(30, ms=300)
        h.enqueue(1, ms=2500)  # longer than the grace period
    for _ in range(3):
        h.spawn_ready("-c", "6", "--grace", "1")  # its SIGTERM handler is in place
    h.wait_for_runs(20)
    for _ in range(6):
        old = h.running()[0]
        h.spawn_ready("-c", "6", "--grace", "1")
        # Its grace, then at most AFTER_GRACE to hand back and report, and room
        # for a loaded machine. One that hung would never leave; one that waited
        # for its 2.5 s jobs would hand none back (checked below).
        took = h.sigterm(old, grace=1)
        assert took < 1 + AFTER_GRACE + 5, f"a worker outstayed its grace period: {took:.1f} s"
    h.account("2. SIGTERM (a deploy) during long jobs")
    logs = "".join(w.log_path.read_text() for w in h.workers)
    assert "handed back to ready" in logs, "no job outlived a grace period"


def test_a_worker_frozen_past_its_lease(harness):
    """SIGSTOP it for longer than its lease, then SIGCONT: the others recover
    its jobs, and its own outcomes for them are discarded."""
    h = harness
    h.enqueue(2500, ms=50)
    frozen, *_ = (h.spawn_ready("-c", "8") for _ in range(3))
    for _ in range(3):
        h.keep_stocked(800, ms=50)
        h.wait_for_runs(100)
        # Frozen holding leases (one that has only just started may have none
        # yet): they are what the others must recover, and it must lose.
        h.wait_until(lambda: h.leases_of(frozen), what="the worker to hold leases")
        frozen.send_signal(signal.SIGSTOP)
        at = h.now()
        fault = Fault(at, at, h.leases_of(frozen))
        h.faults.append(fault)
        h.wait_until(lambda f=fault: h.restarted(f), what="the others to recover its jobs")
        frozen.send_signal(signal.SIGCONT)
    h.account("5. SIGSTOP a worker past its lease, then SIGCONT")
    assert all(f.in_flight for f in h.faults), "a freeze that held no lease tests nothing"
    log = frozen.log_path.read_text()
    assert "lease lost" in log or "outcome discarded" in log


def test_poison_jobs_that_crash_their_worker_every_time(harness):
    """Jobs that take the whole worker down (os._exit, a segfault) on every
    attempt: each fails after the most stalls allowed, into the dead-letter
    set, while the jobs around them keep flowing. Dead workers are replaced,
    as a process supervisor (systemd, Kubernetes) would."""
    h = harness
    poison = set()
    for how in ("exit", "segfault") * 3:
        h.enqueue(200, ms=10)
        poison |= set(h.enqueue(1, task="crash", args=(how,)))
    for _ in range(3):
        h.spawn("-c", "4")
    # Each poison job takes down the worker running it 4 times (3 stalls are
    # allowed); from its third run on it runs alone, as do the jobs that were
    # beside it twice, so no other job reaches the limit.
    h.supervise(until=lambda: h.settled(), keep=3, args=("-c", "4"))
    h.account("11. poison jobs kill their worker (6 of 1206)", may_fail=poison)
    for job_id in poison:
        info = h.app.job(job_id, "default").info()
        assert (info.state, info.stalls) == ("failed", 4), info  # 3 stalls allowed
        assert "StalledJobError" in info.error["type"]
