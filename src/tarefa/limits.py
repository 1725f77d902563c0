"""Per-queue settings the workers apply when they lease: rate limits, limits
per key, and how many completed jobs to keep.

They are set in code, on the App (``app.configure_queue(...)``), so every
worker running that code applies the same ones; the fetch script enforces
them on Redis, across all workers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """How workers lease from one queue. Every limit holds across all workers.

    ``rate_limit``: at most N starts in any window of the period ("100/m").
    ``key_rate_limit``: the same for each key's jobs (``with_options(key=...)``).
    ``key_concurrency``: at most N jobs of one key running at once.
    ``keep_completed``: keep at most N completed jobs (on top of each task's
    ``result_ttl``); the ones whose results expire soonest go first.
    """

    rate_limit: tuple[int, int] | None = None  # (starts, period ms)
    key_rate_limit: tuple[int, int] | None = None
    key_concurrency: int | None = None
    keep_completed: int | None = None

    @classmethod
    def parse(cls, *, rate_limit=None, key_rate_limit=None, key_concurrency=None,
              keep_completed=None) -> QueueSettings:  # fmt: skip
        for name, value in (("key_concurrency", key_concurrency),
                            ("keep_completed", keep_completed)):  # fmt: skip
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 1
            ):
                raise ValueError(f"{name} must be an int >= 1 or None, not {value!r}")
        return cls(
            rate_limit=None if rate_limit is None else parse_rate(rate_limit, "rate_limit"),
            key_rate_limit=None
            if key_rate_limit is None
            else parse_rate(key_rate_limit, "key_rate_limit"),
            key_concurrency=key_concurrency,
            keep_completed=keep_completed,
        )

    def as_args(self) -> tuple[int, int, int, int, int, int]:
        """The fetch script's limit arguments (0: none)."""
        rate = self.rate_limit or (0, 0)
        key_rate = self.key_rate_limit or (0, 0)
        return (*rate, *key_rate, self.key_concurrency or 0, self.keep_completed or 0)


DEFAULT_SETTINGS = QueueSettings()
