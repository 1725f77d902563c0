"""What the worker says about its jobs, on ``tarefa.worker``.

Always: an attempt that failed and will run again (WARNING) and a job that
failed for good (ERROR, with its traceback), both once Redis has recorded
them; an attempt whose lease was lost, an outcome discarded, a job recovered
from a worker that stopped, a job handed back at shutdown, each with the
reason Redis gave. With ``verbose``: a line as each attempt starts and ends
(INFO). Every line carries the job's fields (``tarefa.logs.job_fields``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from types import TracebackType

from ..logs import job_fields
from ..records import AttemptOutcome, Leased, LeaseLoss, Outcome, OutcomeKind, RecoveredJob
from ..serializer import load_error
from .running import Running

log = logging.getLogger("tarefa.worker")

_ENDED_AS = {
    OutcomeKind.COMPLETED: "completed",
    OutcomeKind.RETRY: "failed (to be retried)",
    OutcomeKind.FAILED: "failed",
}
# A user's cancel, or a report sent twice, is no cause for alarm.
_LOSS_LEVEL = {LeaseLoss.CANCELLED: logging.INFO, LeaseLoss.RECORDED: logging.INFO}


@dataclass(slots=True)
class _Ended:
    """An attempt that ended, until Redis records (or discards) its outcome."""

    queue: str
    job: Leased
    outcome: Outcome
    seconds: float


def _name(job_id: str, task: str, queue: str) -> str:
    return f"job {job_id} ({task}) of queue {queue}"


class JobLog:
    """The worker's lines about jobs; ``verbose``: also each start and end."""

    def __init__(self, verbose: bool = False):
        self.verbose = verbose
        self._ended: dict[tuple[str, bytes], _Ended] = {}  # by (job id, lease token)

    def started(self, queue: str, job: Leased) -> float:
        """An attempt starts; returns when (for its duration)."""
        if self.verbose:
            log.info(
                "%s: attempt %d started", _name(job.id, job.task, queue), job.attempts,
                extra=job_fields(job.id, job.task, queue, job.attempts),
            )  # fmt: skip
        return time.monotonic()

    def ended(self, queue: str, job: Leased, outcome: Outcome, began: float) -> None:
        """An attempt ended; its outcome goes to Redis with the next call."""
        seconds = time.monotonic() - began
        self._ended[job.id, job.token] = _Ended(queue, job, outcome, seconds)  # see recorded
        if self.verbose:
            log.info(
                "%s: attempt %d %s in %.3f s", _name(job.id, job.task, queue), job.attempts,
                _ENDED_AS[outcome.kind],
                seconds,
                extra=job_fields(job.id, job.task, queue, job.attempts,
                                 duration_ms=round(seconds * 1000, 3), outcome=outcome.kind.value),
            )  # fmt: skip

    def recorded(self, sent: list[AttemptOutcome], discarded: list[tuple[str, LeaseLoss]]) -> None:
        """Redis recorded the outcomes ``sent`` but those ``discarded`` (job id, why)."""
        why = dict(discarded)
        for attempt in sent:
            job_id = attempt.job_id
            ended = self._ended.pop((job_id, attempt.token), None)
            if job_id in why:
                self._discarded(job_id, ended, why[job_id])
            elif ended is not None and not attempt.completed:
                self._failed(ended)

    def forget(self, job_id: str, token: bytes) -> None:
        self._ended.pop((job_id, token), None)

    def _failed(self, ended: _Ended) -> None:
        job, outcome = ended.job, ended.outcome
        error = load_error(outcome.value)
        of = f" of {outcome.allowed}" if outcome.allowed else ""
        fields = job_fields(
            job.id, job.task, ended.queue, job.attempts,
            duration_ms=round(ended.seconds * 1000, 3), error_type=error["type"],
        )  # fmt: skip
        failure = f"{error['type']}: {error['message']}"
        name = _name(job.id, job.task, ended.queue)
        if outcome.kind is OutcomeKind.RETRY:
            fields["retry_in_s"] = outcome.ms / 1000
            log.warning(
                "%s: attempt %d%s failed: %s; retrying in %s s",
                name, job.attempts, of, failure, _seconds(outcome.ms), extra=fields,
            )  # fmt: skip
            return
        record = log.makeRecord(
            log.name, logging.ERROR, __file__, 0,
            "%s failed for good at attempt %d%s: %s; it is in the failed (dead-letter) set",
            (name, job.attempts, of, failure), _exc_info(outcome.error), extra=fields,
        )  # fmt: skip
        # The traceback as stored with the job: the same text the dashboard shows,
        # also for errors raised in a child process (no exception object here).
        record.exc_text = (error.get("traceback") or "").rstrip("\n") or None
        if log.isEnabledFor(logging.ERROR):
            log.handle(record)

    def _discarded(self, job_id: str, ended: _Ended | None, why: LeaseLoss) -> None:
        if ended is None:  # a completed attempt: nothing kept about it but its id
            log.log(
                _LOSS_LEVEL.get(why, logging.WARNING),
                "job %s: outcome discarded: %s", job_id, why.because,
                extra={"job_id": job_id, "reason": why.value},
            )  # fmt: skip
            return
        job = ended.job
        log.log(
            _LOSS_LEVEL.get(why, logging.WARNING),
            "%s: outcome discarded (attempt %d, %s): %s",
            _name(job.id, job.task, ended.queue), job.attempts, ended.outcome.kind, why.because,
            extra=job_fields(job.id, job.task, ended.queue, job.attempts, reason=why.value),
        )  # fmt: skip

    def lease_lost(self, running: Running, why: LeaseLoss) -> None:
        job = running.job
        log.log(
            _LOSS_LEVEL.get(why, logging.WARNING),
            "%s: lease lost, attempt %d stopped: %s",
            _name(job.id, job.task, running.queue), job.attempts, why.because,
            extra=job_fields(job.id, job.task, running.queue, job.attempts, reason=why.value),
        )  # fmt: skip

    def recovered(self, queue: str, jobs: list[RecoveredJob], max_stalls: int) -> None:
        """Jobs whose lease ran out, their worker having stopped renewing it."""
        for job in jobs:
            why = (
                f"its lease expired, worker {job.worker or '?'} having stopped renewing it "
                "(killed, frozen, or cut off from Redis)"
            )
            fields = job_fields(job.job_id, job.task, queue, None, reason="lease_expired",
                                worker=job.worker, stalls=job.stalls)  # fmt: skip
            name = _name(job.job_id, job.task, queue)
            if job.failed:
                fields["error_type"] = "StalledJobError"
                log.error(
                    "%s failed for good: %s, %d times (more than %d); it is in the failed "
                    "(dead-letter) set", name, why, job.stalls, max_stalls, extra=fields,
                )  # fmt: skip
            else:
                log.warning(
                    "%s recovered: %s; back to ready (stall %d of at most %d)",
                    name, why, job.stalls, max_stalls, extra=fields,
                )  # fmt: skip

    def handed_back(self, jobs: list[Running], count: int, why: str | None) -> None:
        """Leased jobs put back to ready, their attempt not counted: ``why``
        the worker is stopping (WARNING), or None: leased beyond its free
        slots (DEBUG)."""
        level = logging.WARNING if why else logging.DEBUG
        why = why or "leased beyond this worker's free slots"
        for running in jobs:
            job = running.job
            log.log(
                level, "%s handed back to ready: %s (attempt %d not counted)",
                _name(job.id, job.task, running.queue), why, job.attempts,
                extra=job_fields(job.id, job.task, running.queue, job.attempts,
                                 reason="stopping" if level == logging.WARNING else "no_free_slot"),
            )  # fmt: skip
        if count < len(jobs):
            log.log(
                level, "%d of these jobs had lost their lease already: not handed back",
                len(jobs) - count,
            )  # fmt: skip


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.3f}".rstrip("0").rstrip(".")


def _exc_info(
    error: BaseException | None,
) -> tuple[type[BaseException], BaseException, TracebackType | None] | None:
    return (type(error), error, error.__traceback__) if error is not None else None
