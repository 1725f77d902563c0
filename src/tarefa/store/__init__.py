"""The only package that speaks Redis: key names, Lua scripts, connections,
and the embedded default server."""

from .embedded import Embedded, EmbeddedError
from .memory import RedisMemory
from .replies import Fetched, Leased, LeaseLoss, LostLease, RecoveredJob, Recovery
from .store import Store

__all__ = [
    "Embedded",
    "EmbeddedError",
    "Fetched",
    "Leased",
    "LeaseLoss",
    "LostLease",
    "RecoveredJob",
    "Recovery",
    "RedisMemory",
    "Store",
]
