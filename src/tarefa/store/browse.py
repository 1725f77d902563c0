"""Reading and deleting jobs for operators (the REST API, the dashboard, the
CLI): job ids by state with paging, a summary row per job, the age of the
oldest ready job, the counts behind metrics and charts, deletion, and
cleaning out ended jobs by age.

Reads are plain commands, not scripts: an operator's view may be a moment
stale, and must never hold up the workers. (One exception: reading the
history first takes the minute's copy of the counts, if no worker has.)
"""

from __future__ import annotations

from collections.abc import Sequence

from ..records import JobInfo
from .cancelled import cancelled_ids
from .job_hash import SUMMARY_FIELDS, job_info
from .keys import QueueKeys, job_ref, queue_keys
from .replies import decode_list, undecoded
from .waiting import WaitingJobs

# The states a listing shows, in the order it shows them: soonest first for
# what is to come, newest first for what has ended. Cancelled jobs are in no
# index (they expire on their own): they are found by a bounded scan
# (cancelled.py).
LISTED_STATES = ("queued", "scheduled", "active", "waiting", "completed", "failed", "cancelled")
_NEWEST_FIRST = ("completed", "failed")
# The ended states whose jobs can be cleaned out by age (clean.lua).
CLEANABLE_STATES = ("completed", "failed", "cancelled")
CLEAN_BATCH = 1000  # index entries (or keys scanned) per clean.lua call


class Browsing(WaitingJobs):
    """An operator's reads, and deleting jobs."""

    def lane_keys(self, queue: str) -> list[str]:
        """The keys that have a lane (jobs enqueued with ``key=``) in play."""
        k = queue_keys(queue)
        pipe = self.clients.sync.pipeline(transaction=False)
        pipe.zrange(k.lanes, 0, -1)
        pipe.zrange(k.lanes_waiting, 0, -1)
        pipe.hkeys(k.lane_active)
        return sorted({key.decode() for found in pipe.execute() for key in found})

    def job_ids(self, queue: str, state: str, offset: int, limit: int) -> list[str]:
        """Up to ``limit`` ids of the queue's jobs in ``state``, from ``offset``."""
        if state not in LISTED_STATES:
            raise ValueError(f"state must be one of {', '.join(LISTED_STATES)}, not {state!r}")
        k = queue_keys(queue)
        if state == "queued":
            return self._queued_ids(k, offset, limit)
        if state == "cancelled":
            return self.cancelled_ids(queue)[0][offset : offset + limit]
        zset = getattr(k, state)
        read = self.clients.sync.zrevrange if state in _NEWEST_FIRST else self.clients.sync.zrange
        return decode_list(undecoded(read(zset, offset, offset + limit - 1)))

    def cancelled_ids(self, queue: str) -> tuple[list[str], bool]:
        """The queue's cancelled jobs, newest first, and whether the bounded
        scan that found them saw all of the queue's jobs (cancelled.py)."""
        return cancelled_ids(self.clients.sync_for(queue_keys(queue).ready), queue)

    def _queued_ids(self, k: QueueKeys, offset: int, limit: int) -> list[str]:
        """Queued jobs in the order workers take them: the ready list (oldest
        first), then by priority, then each key's lane."""
        client = self.clients.sync
        lanes = [k.lane(key) for key in self.lane_keys(k.name)]
        pipe = client.pipeline(transaction=False)
        for name in (k.ready, *lanes):
            pipe.llen(name)
        lengths = pipe.execute()
        segments = [(k.ready, lengths[0]), (k.prioritized, client.zcard(k.prioritized))]
        segments += zip(lanes, lengths[1:], strict=True)
        ids: list[str] = []
        for name, length in segments:
            if len(ids) >= limit:
                break
            if offset >= length:
                offset -= length
                continue
            end = min(length, offset + limit - len(ids)) - 1
            if name == k.prioritized:
                ids += decode_list(undecoded(client.zrange(name, offset, end)))
            else:  # lists are pushed on the left and taken from the right
                ids += reversed(decode_list(undecoded(client.lrange(name, -1 - end, -1 - offset))))
            offset = 0
        return ids

    def job_infos(self, queue: str, ids: Sequence[str]) -> list[JobInfo | None]:
        """Each job's summary; None for a job that no longer exists."""
        k = queue_keys(queue)
        pipe = self.clients.sync.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(k.job(job_id), SUMMARY_FIELDS)
        infos: list[JobInfo | None] = []
        for job_id, values in zip(ids, pipe.execute(), strict=True):
            row = {name: v for name, v in zip(SUMMARY_FIELDS, values, strict=True) if v is not None}
            infos.append(job_info(queue, job_id, row) if "state" in row else None)
        return infos

    def run_times(self, queue: str, ids: Sequence[str]) -> list[int | None]:
        """When each scheduled job is due (ms, Redis clock); None for a job
        that is not scheduled."""
        pipe = self.clients.sync.pipeline(transaction=False)
        for job_id in ids:
            pipe.zscore(queue_keys(queue).scheduled, job_id)
        return [None if ms is None else int(ms) for ms in pipe.execute()]

    def job_payloads(self, queue: str, ids: Sequence[str]) -> list[bytes | None]:
        """Each job's stored arguments (``[args, kwargs]``, JSON or pickled);
        None where the job keeps none (completed) or no longer exists."""
        k = queue_keys(queue)
        pipe = self.clients.sync.pipeline(transaction=False)
        for job_id in ids:
            pipe.hget(k.job(job_id), "payload")
        return pipe.execute()

    def oldest_ready_ms(self, queue: str) -> int | None:
        """Since when (ms, Redis clock) the longest-waiting ready job waits to
        start, among the next in line of the ready list, the priorities and
        each lane; None when nothing is ready."""
        k = queue_keys(queue)
        client = self.clients.sync
        heads = [
            undecoded(client.lindex(k.ready, -1)),
            *undecoded(client.zrange(k.prioritized, 0, 0)),
        ]
        heads += [undecoded(client.lindex(k.lane(key), -1)) for key in self.lane_keys(queue)]
        pipe = client.pipeline(transaction=False)
        for job_id in filter(None, heads):
            pipe.hmget(k.job(job_id.decode()), "enqueued_at", "ready_at")
        since = [max(int(v) for v in pair if v) for pair in pipe.execute() if any(pair)]
        return min(since, default=None)

    def oldest_ready_age(self, queue: str) -> float | None:
        """Seconds the longest-waiting ready job has waited (oldest_ready_ms),
        by Redis's clock; None when nothing is ready."""
        since = self.oldest_ready_ms(queue)
        if since is None:
            return None
        return max(0.0, (self.clock_ms() - since) / 1000)

    def clock_ms(self) -> int:
        """Now, in ms on Redis's clock (the one leases and due times use)."""
        seconds, micros = self.clients.sync.time()
        return seconds * 1000 + micros // 1000

    def stats(self, queue: str) -> dict[str, int]:
        """The queue's counts since it began, by field (tarefa.stats)."""
        raw = undecoded(self.clients.sync.hgetall(queue_keys(queue).stats))
        return {name.decode(): int(n) for name, n in raw.items()}

    def history(self, queue: str, minutes: int) -> list[tuple[int, ...]]:
        """The queue's totals once a minute, oldest first, for the last
        ``minutes``: (ms, enqueued, started, completed, failed, retried).
        Takes this minute's copy first, if no worker has yet."""
        k = queue_keys(queue)
        self._run((self.scripts.record_stats, k, []))
        rows = self.clients.sync.lrange(k.history, 0, minutes)
        return [tuple(map(int, row.split())) for row in reversed(rows)]

    def reachable(self) -> None:
        """Raise unless Redis answers (a PING)."""
        self.clients.sync.ping()

    def delete(self, queue: str, ids: Sequence[str]) -> int:
        """Delete jobs in any state; returns how many existed. Jobs waiting for
        one that had not ended are cancelled, as if it had been."""
        if not ids:
            return 0
        deleted, orphans = self._run((self.scripts.delete, queue_keys(queue), list(ids)))
        orphans = decode_list(orphans)
        for parent_id, child in zip(orphans[::2], orphans[1::2], strict=True):
            self.resolve(job_ref(queue, parent_id), "cancelled", b"", [child])
        return int(deleted)

    def clean_batch(
        self, queue: str, state: str, older_than_ms: int, cursor: str
    ) -> tuple[int, str]:
        """One bounded step of deleting the queue's jobs in ``state`` that
        ended at least ``older_than_ms`` ago (clean.lua): how many it deleted,
        and the cursor to go on from ('0' to begin; '' once done)."""
        if state not in CLEANABLE_STATES:
            raise ValueError(f"state must be one of {', '.join(CLEANABLE_STATES)}, not {state!r}")
        args = [state, older_than_ms, cursor, CLEAN_BATCH]
        deleted, after = self._run((self.scripts.clean, queue_keys(queue), args))
        return deleted, after.decode()
