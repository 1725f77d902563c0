"""``enqueue_many``'s batch on its way to the backend: sent in chunks (one
script call never blocks Redis long), and what a failure part of the way
through means for the jobs of each chunk."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from .errors import NotDurable, RedisFull, RedisUnavailable
from .records import Enqueued

# A job's fields as sent to the backend: names, and values as str or bytes.
Fields = list[str | bytes]
# The jobs of an enqueue_many: each one's id and fields.
Batch = list[tuple[str, Fields]]

CHUNK = 1000  # jobs per enqueue_many script call

J = TypeVar("J")  # a job's handle


class BatchSend:
    """The replies of a batch's chunks so far, and the chunks Redis could
    not confirm durable::

        sent = BatchSend(batch)
        for n, chunk in sent.chunks():
            with sent.chunk(n):
                sent.replies += backend.enqueue_many(queue, when, chunk, durable)
        return sent.handles(make_handles)
    """

    def __init__(self, batch: Batch):
        self.batch = batch
        self.replies: list[Enqueued] = []
        self.doubts: list[NotDurable] = []

    def chunks(self) -> Iterator[tuple[int, Batch]]:
        for n, start in enumerate(range(0, len(self.batch), CHUNK)):
            yield n, self.batch[start : start + CHUNK]

    @contextmanager
    def chunk(self, n: int) -> Iterator[None]:
        """Around sending chunk ``n``: a chunk not confirmed durable was
        enqueued (the batch goes on, and says so at the end); Redis away or
        full stops the batch, its error saying which jobs were not sent."""
        try:
            yield
        except NotDurable as exc:
            self.replies += exc.reply
            self.doubts.append(exc)
        except RedisUnavailable as exc:
            raise self._unavailable(exc, n) from exc.__cause__
        except RedisFull as exc:
            raise self._full(exc, n) from exc.__cause__

    def handles(self, make: Callable[[list[Enqueued]], list[J]]) -> list[J]:
        """``make(replies)``: the batch's handles; or, when Redis could not
        confirm that some of it reached its disk, ``NotDurable`` for those,
        carrying every handle."""
        jobs = make(self.replies)
        if not self.doubts:
            return jobs
        ids = [i for exc in self.doubts for i in exc.job_ids]
        error = NotDurable(
            f"all {len(self.batch)} jobs of the batch were enqueued, but {len(ids)} of them "
            f"may not be durable: {self.doubts[0].reason}",
            ids,
            self.doubts[0].reason,
        )
        error.jobs = jobs
        raise error

    def _not_sent(self, failed: int) -> list[str]:
        return [job_id for job_id, _ in self.batch[failed * CHUNK :]]

    def _unavailable(self, exc: RedisUnavailable, failed: int) -> RedisUnavailable:
        """The chunks before ``failed`` were enqueued; that one's fate is
        unknown, and the later ones were not sent."""
        if failed == 0:
            return exc
        ids = self._not_sent(failed)
        return type(exc)(
            f"the first {failed * CHUNK} jobs of the batch were enqueued; the other "
            f"{len(ids)} (.job_ids) were not, or not all: {exc}",
            ids,
        )

    def _full(self, exc: RedisFull, refused: int) -> RedisFull:
        """The chunks before ``refused`` were enqueued; that one was refused,
        whole, and the later ones were not sent."""
        if refused == 0:
            return exc
        ids = self._not_sent(refused)
        return RedisFull(
            f"the first {refused * CHUNK} jobs of the batch were enqueued; the other "
            f"{len(ids)} (.job_ids) were not, the first {len(exc.job_ids)} of them refused: "
            f"{exc}",
            exc.queue,
            ids,
        )
