"""A worker's health, for its metrics port's ``/health`` (a liveness probe):
whether its event loop answers, and when Redis last took its heartbeat. The
lease keeper's thread keeps it (lease_keeper.py), which asks the loop to
answer each beat; the metrics server's thread reads it.

Only a held loop makes the worker unhealthy: a job's blocking code holds it
(nothing else runs: no fetch, no outcome reported), and a restart is the cure.
Redis out of reach is reported, not counted: the worker reconnects by itself,
and a restart would not bring Redis back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any


@dataclass
class Health:
    asked_at: float | None = None  # when the loop was asked to answer and has not yet
    beat_at: float | None = None  # when Redis last took the worker's heartbeat

    def report(self, lease: float) -> tuple[bool, dict[str, Any]]:
        """Healthy unless the loop has not answered for over a ``lease`` (in
        seconds: by then the jobs it runs look stalled); and what was seen."""
        now = time.monotonic()
        asked_at, beat_at = self.asked_at, self.beat_at  # (read once: another thread writes)
        held = 0.0 if asked_at is None else now - asked_at
        healthy = held <= lease
        return healthy, {
            "status": "ok" if healthy else "loop held",
            "loop_held_seconds": round(held, 3),
            "redis_beat_seconds_ago": None if beat_at is None else round(now - beat_at, 3),
        }
