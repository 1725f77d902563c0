"""``current_job()``: what a running job can know about itself, and how it
reports its progress."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import orjson

from .logs import JobLogger

if TYPE_CHECKING:
    from .backend import Producing

log = logging.getLogger("tarefa.job")


@dataclass(frozen=True)
class JobContext:
    id: str
    queue: str
    task: str
    attempt: int  # 1 on the first run, 2 on the first retry...
    store: Producing | None = field(repr=False, default=None)
    token: bytes = field(repr=False, default=b"")
    # Progress from an async job: the latest report not sent yet, and its sender.
    _outbox: dict[str, Any] = field(repr=False, default_factory=dict)
    _cancel: threading.Event = field(repr=False, default_factory=threading.Event)

    @cached_property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger (``tarefa.job``) whose lines name this job and carry its
        id, task, queue and attempt as fields."""
        return JobLogger(log, self.id, self.task, self.queue, self.attempt)

    @property
    def cancelled(self) -> bool:
        """True once the job was cancelled (or its lease taken over): a long
        sync job should check it and return early; its outcome is discarded."""
        return self._cancel.is_set()

    def progress(self, value: float, message: str | None = None) -> None:
        """Report how far the job got (e.g. 0.5, "OCR done"); readable at once
        as ``job.progress``. From an async job it is sent in the background, so
        it never blocks the event loop."""
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise TypeError(f"progress value must be a finite number, not {value!r}")
        if message is not None and not isinstance(message, str):
            raise TypeError(f"progress message must be a str, not {type(message).__name__}")
        if self.store is None:
            return  # run inline, outside a worker: nothing to report to
        report = orjson.dumps({"value": value, "message": message, "at": int(time.time() * 1000)})
        args = (self.queue, self.id, self.token, report)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a sync job, in a worker thread
            try:
                self.store.progress(*args)
            except Exception as exc:  # progress is best effort: the job goes on
                self.logger.warning("progress report failed: %r", exc)
        else:
            self._outbox["latest"] = args
            sender = self._outbox.get("sender")
            if sender is None or sender.done():
                self._outbox["sender"] = loop.create_task(self._send_latest())

    async def _send_latest(self) -> None:
        """Send reports one at a time, always the latest: in order, and a burst
        of quick reports costs one round trip, not one each."""
        while (args := self._outbox.pop("latest", None)) is not None:
            assert self.store is not None  # (progress() sends only when there is one)
            try:
                await self.store.aprogress(*args)
            except Exception as exc:  # progress is best effort: the job goes on
                self.logger.warning("progress report failed: %r", exc)

    async def flush(self) -> None:
        """Wait for the progress report still on its way (before the job's end
        is reported, so the last progress is stored)."""
        sender = self._outbox.get("sender")
        # A sender on another loop (a sync job that ran its own asyncio.run) was
        # settled when that loop closed.
        if sender is not None and sender.get_loop() is asyncio.get_running_loop():
            await asyncio.gather(sender, return_exceptions=True)


_current: ContextVar[JobContext | None] = ContextVar("tarefa_current_job", default=None)


def current_job() -> JobContext:
    """The job being run by this worker task or thread."""
    job = _current.get()
    if job is None:
        raise RuntimeError("current_job() is only available inside a running job")
    return job
