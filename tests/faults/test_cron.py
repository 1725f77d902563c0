"""Cron while workers come and go: every worker keeps the schedule, so each
tick must run once, however many of them start, stop or die around it."""

from __future__ import annotations

import random

from .conftest import ROWS, Ledger, Row
from .tasks import ENDS

TICK = "cron:tests.faults.tasks:tick:"


def test_each_tick_runs_once_while_workers_start_and_stop_at_random(harness):
    h = harness
    rng = random.Random(9)
    args = ("-q", "cron", "-c", "2")
    h.spawn_ready(*args)
    first = h.now()
    for _ in range(10):  # about a change a second
        ticks = h.ledger.llen(ENDS)
        h.wait_until(lambda n=ticks: h.ledger.llen(ENDS) > n, what="the next tick")
        running = h.running()
        if len(running) > 1 and rng.random() < 0.5:
            victim = rng.choice(running)
            if rng.random() < 0.5:
                h.kill(victim)
            else:
                h.sigterm(victim, grace=30)
        if len(h.running()) < 3:
            h.spawn_ready(*args)
    last = h.now()
    h.stop_all()

    ledger = Ledger.read(h.ledger)
    runs = {int(job_id.removeprefix(TICK)): n for job_id, n in ledger.ends.items()}
    expected = range(int(first) + 1, int(last))  # every whole second in between
    missed = [t for t in expected if t not in runs]
    twice = {t for t, n in runs.items() if n > 1}
    recovered = h.stalled((i for i, n in ledger.ends.items() if n > 1), "cron")
    in_flight = {int(i.removeprefix(TICK)) for f in h.faults for i in f.in_flight | recovered}
    ROWS.append(Row("9. cron, workers started and stopped at random", len(expected),
                    len(h.faults), len(missed), len(twice), 0, None))  # fmt: skip
    assert twice <= in_flight, f"ticks {sorted(twice - in_flight)} ran twice"
    # A tick can be merged into the run before it when that run could not start
    # in time (its worker died holding it); never more than one per fault.
    assert len(missed) <= len(h.faults), f"ticks {missed} never ran"
