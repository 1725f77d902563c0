"""Commands as the bytes Redis reads (RESP), packed here for the hot calls.

redis-py packs a command by passing each argument through its encoder in
Python, about a microsecond apiece; an enqueue has ~28 (EVALSHA, the SHA, the
number of keys, 12 keys, then the arguments), so packing cost more than the
rest of the call's Python together. A script call on one queue always starts
the same way, so that head is packed once (``Head``) and only the arguments
are packed per call, by hiredis (C). Arguments are str, bytes, int or float;
anything else (None, a bool) is a TypeError, as redis-py refuses them too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hiredis import pack_command


def pack(*args: Any) -> bytes:
    """A whole command, e.g. ``pack("SADD", key, member)``."""
    packed: bytes = pack_command(args)
    return packed


def _items(packed: bytes) -> bytes:
    """A packed command without its header (``*<count>\\r\\n``): its items."""
    return packed[packed.index(b"\r\n") + 2 :]


class Head:
    """The arguments every call of a command starts with, packed once."""

    __slots__ = ("count", "items")

    def __init__(self, args: Sequence[Any]):
        self.count = len(args)
        self.items = _items(pack_command(tuple(args)))

    def pack(self, args: Sequence[Any]) -> bytes:
        """The command: this head, then ``args``."""
        tail = _items(pack_command(tuple(args)))
        return b"*%d\r\n%b%b" % (self.count + len(args), self.items, tail)
