"""Per-queue settings the workers apply when they lease: rate limits, limits
per key, how many completed jobs to keep, and how many failed jobs (the
dead-letter set) for how long.

They are set in code, on the App (``app.configure_queue(...)``), so every
worker running that code applies the same ones; the fetch script enforces
them on Redis, across all workers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .durations import parse_duration

_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60,
          "h": 3600, "hour": 3600, "d": 86400, "day": 86400}  # fmt: skip
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*\.?\d*)\s*([a-z]+?)s?\s*$")


def parse_rate(rate: object, name: str = "rate_limit") -> tuple[int, int]:
    """``"100/m"``, ``"10/s"``, ``"5/2s"``, ``"1000/hour"`` or ``(n, seconds)``
    -> (starts, period in ms)."""
    if isinstance(rate, tuple) and len(rate) == 2:
        count, seconds = rate
    elif isinstance(rate, str) and (match := _RATE.match(rate.lower())):
        count, every, unit = match.groups()
        if unit not in _UNITS:
            raise ValueError(f"{name}: unknown unit {unit!r} in {rate!r}; use s, m, h or d")
        count, seconds = int(count), float(every or 1) * _UNITS[unit]
    else:
        raise ValueError(f"{name} must look like '100/m', '10/s' or '5/2s', not {rate!r}")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(f"{name}: the count must be an int >= 1, not {count!r}")
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds <= 0:
        raise ValueError(f"{name}: the period must be a positive number of seconds")
    if seconds * 1000 < 1 or seconds > 86400 * 366:
        raise ValueError(f"{name}: the period must be from 1 ms to a year")
    return count, int(seconds * 1000)


# The dead-letter set's bounds by default: Sidekiq's dead set's (10,000 jobs,
# 6 months), so a failure storm or a queue nobody watches cannot fill Redis,
# while a team back from a long holiday still finds every recent failure.
KEEP_FAILED = 10_000
FAILED_TTL = 180 * 86400  # seconds


def _check_count(name: str, value: object) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ValueError(f"{name} must be an int >= 1 or None, not {value!r}")


def _check_ttl(value: object) -> float | None:
    if value is None:
        return None
    seconds = parse_duration(value, "failed_ttl")
    if seconds * 1000 < 1:
        raise ValueError(f"failed_ttl must be at least 1 ms, or None, not {value!r}")
    return seconds


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """How workers lease from one queue. Every limit holds across all workers.

    ``rate_limit``: at most N starts in any window of the period ("100/m").
    ``key_rate_limit``: the same for each key's jobs (``with_options(key=...)``).
    ``key_concurrency``: at most N jobs of one key running at once.
    ``keep_completed``: keep at most N completed jobs (on top of each task's
    ``result_ttl``); the ones whose results expire soonest go first.
    ``keep_failed``, ``failed_ttl``: keep at most N failed jobs (the
    dead-letter set), none longer than so many seconds after it failed; the
    oldest go first, as jobs fail (None: no such bound).
    """

    rate_limit: tuple[int, int] | None = None  # (starts, period ms)
    key_rate_limit: tuple[int, int] | None = None
    key_concurrency: int | None = None
    keep_completed: int | None = None
    keep_failed: int | None = KEEP_FAILED
    failed_ttl: float | None = FAILED_TTL  # seconds

    @classmethod
    def parse(cls, *, rate_limit: object = None, key_rate_limit: object = None,
              key_concurrency: Any = None, keep_completed: Any = None,
              keep_failed: Any = KEEP_FAILED, failed_ttl: object = FAILED_TTL,
              ) -> QueueSettings:  # fmt: skip
        for name, value in (("key_concurrency", key_concurrency),
                            ("keep_completed", keep_completed),
                            ("keep_failed", keep_failed)):  # fmt: skip
            _check_count(name, value)
        return cls(
            rate_limit=None if rate_limit is None else parse_rate(rate_limit, "rate_limit"),
            key_rate_limit=None
            if key_rate_limit is None
            else parse_rate(key_rate_limit, "key_rate_limit"),
            key_concurrency=key_concurrency,
            keep_completed=keep_completed,
            keep_failed=keep_failed,
            failed_ttl=_check_ttl(failed_ttl),
        )


DEFAULT_SETTINGS = QueueSettings()
