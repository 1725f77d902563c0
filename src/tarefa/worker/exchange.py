"""The exchange loop: the worker's one hot call.

One fetch per queue (in the order given) reports the outcomes gathered since
the last call and leases as many jobs as there are free slots. Outcomes pile
up while a call is in flight, so under load they go in batches with no timer.
With nothing to do it sleeps (idle.py) until a job ends, a producer wakes it,
or a scheduled job falls due. A burst worker ends once its queues are drained.

Redis errors never stop it: running jobs go on, outcomes wait in memory, and
the call is retried with back-off until Redis answers again.
"""

from __future__ import annotations

import logging

from .idle import IdleWait
from .jobs import Jobs
from .reconnect import REDIS_ERRORS, Backoff
from .reports import report_lost, resolve_waiting
from .shared import Shared

log = logging.getLogger("tarefa.worker")

MAX_BATCH = 200  # most jobs leased in one call


class Exchange:
    def __init__(self, shared: Shared, jobs: Jobs, idle: IdleWait):
        self.shared = shared
        self.jobs = jobs  # where leased jobs start
        self.idle = idle  # how it sleeps with nothing to do

    async def loop(self) -> None:
        """Until stopped (or, in burst mode, until the queues are drained)."""
        shared, backoff = self.shared, Backoff()
        while not shared.stop.requested:
            shared.changed.clear()
            try:
                leased, next_due, active = await self.exchange()
            except REDIS_ERRORS as exc:
                await shared.sleep(backoff.next(exc))
                continue
            except Exception as exc:  # a bug of tarefa's own: log it, never die of it
                log.exception("exchange failed")
                await shared.sleep(backoff.next(exc))
                continue
            backoff.reset()
            if leased:
                continue  # maybe more is ready: ask again at once (free slots permitting)
            pending = shared.outcomes.pending()
            # All slots free, so every queue was just asked: nothing ready, running,
            # or scheduled anywhere in them.
            drained = self.jobs.idle() and not pending and active == 0 and next_due < 0
            if shared.config.burst and drained:
                return
            if not pending:  # else loop: report the outcomes first
                await self.idle.sleep(next_due)

    async def exchange(self, *, lease: bool = True) -> tuple[int, int, int]:
        """Report outcomes and lease new jobs, queue by queue in priority order.
        Returns how many jobs it leased (or reasons to look again at once),
        when the next scheduled job is due (ms, -1: none), and how many jobs
        the queues have leased in all."""
        shared, config = self.shared, self.shared.config
        leased_total, active_total, dues = 0, 0, []
        for queue in config.queues:
            want = min(self.jobs.free_slots(), MAX_BATCH) if lease else 0
            sent = shared.outcomes.held(queue)
            if want <= 0 and not sent:
                continue
            fetched = await shared.store.fetch(
                queue, config.id, want=max(want, 0), lease_ms=config.lease_ms,
                max_stalls=config.max_stalls, settings=config.settings[queue],
                outcomes=sent,
            )  # fmt: skip
            if sent:  # recorded: forget them
                shared.outcomes.sent(queue, sent, len(fetched.stale))
            shared.job_log.recorded(sent, fetched.discarded)
            shared.job_log.recovered(queue, fetched.recovered, config.max_stalls)
            if fetched.lost:  # they took the places of jobs that may wait behind them
                report_lost(shared, queue, fetched.lost)
                leased_total += 1  # look again at once
            if fetched.ended:
                await resolve_waiting(shared, queue, fetched.ended, sent)
                leased_total += 1  # jobs may have been released: look again at once
            await self.jobs.take(queue, fetched.jobs)
            leased_total += len(fetched.jobs)
            active_total += fetched.active
            if fetched.next_due_ms >= 0:
                dues.append(fetched.next_due_ms)
        return leased_total, min(dues, default=-1), active_total
