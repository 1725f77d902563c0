"""Durations as people write them: ``30s``, ``15m``, ``2h``, ``7d``, or a plain
number of seconds. One parser for every place that takes one (``tarefa clean
--older-than``, the REST API's ``older_than``, ``configure_queue``'s
``failed_ttl``), so they all read the same text the same way.
"""

from __future__ import annotations

import math
import re

UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
LONGEST = 100 * 365 * 86400  # seconds: past a century, a typo rather than an age
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([smhd]?)\s*$")


def parse_duration(value: object, name: str = "duration") -> float:
    """Seconds in ``value``: a number of seconds (int or float, or the same as
    text) or text with a unit, ``30s``, ``15m``, ``2h``, ``7d``. Raises
    ValueError naming ``name`` for anything else: a negative number, a bool,
    another unit, more than a century."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(
            f"{name} must be seconds or a duration such as '30s', '15m', '2h' or '7d', "
            f"not {type(value).__name__}"
        )
    if isinstance(value, str):
        match = _DURATION.match(value.lower())
        if not match:
            raise ValueError(
                f"{name} must be seconds or a duration such as '30s', '15m', '2h' or '7d', "
                f"not {value!r}"
            )
        number, unit = match.groups()
        seconds = float(number) * UNIT_SECONDS[unit or "s"]
    else:
        seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{name} must be 0 or more seconds, not {value!r}")
    if seconds > LONGEST:
        raise ValueError(f"{name} must be at most 100 years, not {value!r}")
    return seconds
