"""Task and call options: what each one means, its default, and its checks.

``TaskOptions`` are set on ``@app.task`` (most can be overridden per call with
``with_options``); ``CallOptions`` belong to one enqueue. Both are checked when
they are given, so a bad option raises at the caller, not later in a worker.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from .records import Added, Enqueued
from .store import check_queue_name

DEFAULT_RESULT_TTL = 3600.0  # seconds a completed job and its result are kept
TEN_YEARS = 10 * 365 * 86400.0
MAX_PRIORITY = 1_000_000
# The largest a job's serialized arguments may be, by default (App(max_payload_bytes=)):
# Redis keeps every job in memory, and a job should carry ids, URLs or paths, not
# documents.
MAX_PAYLOAD_BYTES = 1024 * 1024
# A result is held in Redis for its result_ttl and read by every job.result():
# the same bound as arguments, for the same reasons.
MAX_RESULT_BYTES = 1024 * 1024
POOLS = ("thread", "process")


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """How a task's jobs run. Set on ``@app.task``; most can be overridden per
    call with ``with_options``."""

    queue: str = "default"
    retries: int = 3  # extra attempts after the first fails
    timeout: float | None = None  # seconds; None: no limit
    backoff: float = 1.0  # first retry delay (s); doubles each attempt, with jitter
    backoff_max: float = 3600.0
    result_ttl: float | None = DEFAULT_RESULT_TTL  # 0: drop at once; None: keep forever
    cron: str | None = None  # run on this schedule ("0 * * * *"; a 6th field: seconds)
    tz: str = "UTC"  # the time zone the cron schedule is read in
    throttle: float | None = None  # s: one job per task and key in the window, repeats dropped
    debounce: float | None = None  # s: run once the calls (per task and key) pause this long
    on_success: Callable[..., Any] | None = None  # hooks, run in the worker (worker/hooks.py)
    on_failure: Callable[..., Any] | None = None
    on_retry: Callable[..., Any] | None = None
    pool: str | None = None  # sync tasks: "thread" or "process"; None: the worker's
    durable: bool | None = None  # enqueue returns once Redis fsynced it; None: the App's

    def __post_init__(self) -> None:
        check_queue_name(self.queue)
        if self.pool is not None:
            check_pool(self.pool)
        if self.durable is not None and not isinstance(self.durable, bool):
            raise TypeError(f"durable must be True or False, not {self.durable!r}")
        _check_number("retries", self.retries, integer=True)
        if self.timeout is not None:
            _check_number("timeout", self.timeout, positive=True)
        for name in ("backoff", "backoff_max"):
            _check_number(name, getattr(self, name))
            if getattr(self, name) > TEN_YEARS:  # also: past it, ms no longer count exactly
                raise ValueError(f"{name} over ten years: {getattr(self, name)}")
        for window in ("throttle", "debounce"):
            if getattr(self, window) is not None:
                _check_number(window, getattr(self, window), positive=True)
        if self.throttle is not None and self.debounce is not None:
            raise ValueError("a task can throttle or debounce, not both")
        for hook in ("on_success", "on_failure", "on_retry"):
            if getattr(self, hook) is not None and not callable(getattr(self, hook)):
                raise TypeError(f"{hook} must be a function, not {getattr(self, hook)!r}")
        if self.cron is not None:
            if not isinstance(self.cron, str) or not croniter.is_valid(self.cron):
                raise ValueError(
                    f"cron must be a cron expression like '0 * * * *', not {self.cron!r}"
                )
            try:
                ZoneInfo(self.tz)
            except (ZoneInfoNotFoundError, ValueError, TypeError):
                raise ValueError(f"unknown time zone tz={self.tz!r}") from None
            try:  # valid, but does it ever fire? ("0 0 30 2 *": never)
                croniter(self.cron, datetime.now(UTC)).get_next(datetime)
            except Exception:
                raise ValueError(f"cron {self.cron!r} never runs") from None
        if self.result_ttl is not None:
            _check_number("result_ttl", self.result_ttl)
            if self.result_ttl > TEN_YEARS:
                raise ValueError("result_ttl over ten years: use None to keep results forever")

    def retry_delay(self, attempt: int) -> float:
        """Back-off before retry number ``attempt`` (1-based): exponential,
        capped, with jitter so a burst of failures does not retry in lockstep."""
        # 2.0 ** 64 times any back-off is past any cap; a larger power overflows.
        delay = min(self.backoff * 2.0 ** min(attempt - 1, 64), self.backoff_max)
        return delay * random.uniform(0.5, 1.0)


def _check_number(
    name: str, value: object, *, integer: bool = False, positive: bool = False
) -> float:
    """``value``, checked to be a number (an int if ``integer``), >= 0 (> 0 if
    ``positive``) and finite."""
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        kind = "an int" if integer else "a number"
        raise TypeError(f"{name} must be {kind}, not {type(value).__name__}")
    if value < 0 or (positive and value == 0) or not math.isfinite(value):
        raise ValueError(f"{name} must be {'positive' if positive else '>= 0'}, not {value}")
    return value


def check_payload_limit(limit: object, name: str = "max_payload_bytes") -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        raise ValueError(f"{name} must be a positive int or None, not {limit!r}")
    return limit


def check_timeout(seconds: object) -> float:
    return float(_check_number("redis_timeout", seconds, positive=True))


def check_pool(pool: object) -> str:
    if pool not in POOLS:
        raise ValueError(f"pool must be 'thread' or 'process', not {pool!r}")
    return pool


@dataclass(frozen=True, slots=True)
class CallOptions:
    """Options of one enqueue, on top of the task's."""

    job_id: str | None = None  # de-duplication: an existing id enqueues nothing
    delay: float = 0.0  # seconds before the job may start
    at: datetime | None = None  # or: when it may start
    priority: int = 0  # 0: none (runs first, FIFO); else smaller runs sooner
    key: str = ""  # "": none; else its key's lane (fair turns, limits per key)
    parents: tuple[str, ...] = ()  # "queue|id" of the jobs it waits for (chains, groups)
    takes_results: bool = False  # a group's callback: their results come first

    def when(self) -> tuple[int, int, str]:
        """(delay in ms, priority, key) for the store."""
        if self.at is not None:  # judged at each enqueue, not when the handle was made
            delay = max(0, int((self.at - datetime.now(UTC)).total_seconds() * 1000))
            return delay, self.priority, self.key
        return int(self.delay * 1000), self.priority, self.key

    def __post_init__(self) -> None:
        if self.key and self.priority:
            raise ValueError("a job with a key runs in its key's turn: it takes no priority")
        if self.parents and (self.delay or self.at):
            raise ValueError("a job that waits for others starts when they end: no delay or at")

    def created(self, done: Enqueued) -> bool:
        """Whether an enqueue added the job. When the id was made here, an existing
        job can only be this call's own (its reply was lost and the call retried)."""
        if done.added is Added.KEPT:  # a throttle or debounce window kept another job
            return False
        return done.added is Added.CREATED or self.job_id is None


TASK_ONLY = {"cron", "tz", "on_success", "on_failure", "on_retry", "pool"}  # not per call
PRODUCER_ONLY = {"queue", "throttle", "debounce", "durable"}  # at enqueue, not in the worker
CALL_OPTIONS = ("job_id", "delay", "at", "priority", "key", "depends_on")


def parse_call_options(
    options: dict[str, Any], *, schedule: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``with_options`` keywords into task and call options, checked."""
    task_fields = set(TaskOptions.__dataclass_fields__)
    task_opts: dict[str, Any] = {}
    call_opts: dict[str, Any] = {}
    for name, value in options.items():
        if name in TASK_ONLY and not schedule:
            raise TypeError(f"{name} is set on @app.task, not per call")
        if name in task_fields:
            task_opts[name] = value
        elif name == "job_id":
            if value is not None and (not isinstance(value, str) or not value or len(value) > 200):
                raise ValueError(f"job_id must be a non-empty str of <= 200 chars, not {value!r}")
            call_opts["job_id"] = value
        elif name == "delay":
            if isinstance(value, timedelta):
                value = value.total_seconds()
            call_opts["delay"] = float(_check_number("delay", value))
        elif name == "priority":
            if value is not None:
                _check_number("priority", value, integer=True, positive=True)
                if value > MAX_PRIORITY:
                    raise ValueError(f"priority must be <= {MAX_PRIORITY:,}, not {value}")
            call_opts["priority"] = value or 0
        elif name == "at":
            if not isinstance(value, datetime) or value.tzinfo is None:
                raise TypeError("at= must be a timezone-aware datetime")
            call_opts["at"] = value
        elif name == "depends_on":
            call_opts["depends_on"] = value
        elif name == "key":
            if value is not None and (not isinstance(value, str) or not value or len(value) > 200):
                raise ValueError(f"key must be a non-empty str of <= 200 chars, not {value!r}")
            call_opts["key"] = value or ""
        else:
            known = sorted(task_fields | set(CALL_OPTIONS))
            raise TypeError(f"unknown option {name!r}; known options: {', '.join(known)}")
    return task_opts, call_opts


def dedupe_window(name: str, options: TaskOptions, call: CallOptions) -> tuple[str, int, str]:
    """The store's de-duplication window for these options: (kind, ms, scope)."""
    for kind in ("throttle", "debounce"):
        seconds = getattr(options, kind)
        if seconds is not None:
            if call.job_id is not None:
                raise ValueError(f"{kind} picks the job to keep; it cannot take a job_id")
            if call.parents:
                raise ValueError(f"a job that waits for others cannot {kind}")
            return kind, max(1, int(seconds * 1000)), f"{name}:{call.key}"
    return "", 0, ""
