"""Outcomes for the store's fetch, written in the tests as fetch.lua lists
them: (job id, lease token, kind, value, ms)."""

from __future__ import annotations

from collections.abc import Iterable

from tarefa.records import AttemptOutcome, Outcome, OutcomeKind


def reported(outcomes: Iterable[tuple[str, bytes, str, bytes, int]]) -> list[AttemptOutcome]:
    return [
        AttemptOutcome(job_id, token, Outcome(OutcomeKind(kind), value, ms))
        for job_id, token, kind, value, ms in outcomes
    ]
