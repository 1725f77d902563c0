"""Loads the Lua scripts under ``lua/`` and calls them by SHA.

A script may pull in shared pieces with a line ``--- @include "includes/x.lua"``;
they are resolved once, here, at load time (each file at most once per script),
and a missing or circular include is an error. Scripts are called with EVALSHA
and loaded again transparently when the server does not know them (a Redis
restart or failover empties its script cache).

A script reads a queue's keys by name (``keys.ready``) from the table that the
generated ``includes/queue_keys.lua`` builds. It gets in KEYS only the keys it
reads, found in its assembled source: every key costs the server time on every
call, and most scripts read far fewer than the queue's 24.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any, Protocol

from redis.exceptions import NoScriptError
from redis.typing import EncodableT

from .keys import SCRIPT_KEY_NAMES, QueueKeys
from .packing import Head, pack

_INCLUDE = re.compile(r'^--- @include "([^"]+)"\s*$', re.MULTILINE)
_KEY_READ = re.compile(r"\bkeys\.(\w+)")
QUEUE_KEYS = "includes/queue_keys.lua"  # generated for each script: queue_keys_lua()
_QUEUE_KEYS_HERE = "--- (queue_keys.lua goes here)\n"


# A script's reply is Any: its shape is each script's own (an int, bytes, nil as
# None, or a list of these), read where it is parsed (replies.py, the store).


class SendsPacked(Protocol):
    """A connection that sends commands packed already (ThreadConnections)."""

    def execute_packed(self, command: bytes, /) -> Any: ...


class AsyncSendsPacked(Protocol):
    """``SendsPacked`` for asyncio code (AutoPipeline)."""

    async def execute_packed(self, command: bytes, /) -> Any: ...


class Commands(Protocol):
    """A redis-py client, as far as a script call uses it (redis-py leaves
    ``execute_command`` unannotated)."""

    def execute_command(self, *args: EncodableT, **options: Any) -> Any: ...


class AsyncCommands(Protocol):
    """``Commands`` of an asyncio client."""

    async def execute_command(self, *args: EncodableT, **options: Any) -> Any: ...


class ScriptError(Exception):
    """A Lua script could not be assembled from its file and includes."""


def keys_read(source: str) -> tuple[str, ...]:
    """The queue keys a script reads (``keys.<name>``), in the order of
    ``QueueKeys`` (store/keys.py): the names of its KEYS."""
    read = set(_KEY_READ.findall(source))
    unknown = read.difference(SCRIPT_KEY_NAMES)
    if unknown:
        raise ScriptError(f"no such queue key: keys.{min(unknown)}")
    return tuple(name for name in SCRIPT_KEY_NAMES if name in read)


def queue_keys_lua(names: Sequence[str]) -> str:
    """``includes/queue_keys.lua`` for a script that reads ``names``: the
    ``keys`` table, each key by name, from KEYS in that order. Made from keys.py
    when the script loads, so Python and Lua cannot disagree."""
    lines = [f"  {name} = KEYS[{i}]," for i, name in enumerate(names, 1)]
    return "-- The queue's keys this script reads (store/scripts.py).\nlocal keys = {\n" + (
        "\n".join(lines) + "\n}\n"
    )


def _read(path: str) -> str:
    try:
        return resources.files("tarefa.store").joinpath("lua", path).read_text("utf-8")
    except FileNotFoundError:
        raise ScriptError(f"Lua file not found: {path}") from None


def assemble(name: str, read: Callable[[str], str] = _read) -> str:
    """The source of script ``name`` with its includes resolved; the generated
    ``includes/queue_keys.lua`` names the keys the whole script reads."""
    included: set[str] = set()

    def expand(path: str, stack: tuple[str, ...]) -> str:
        if path in stack:
            raise ScriptError("circular include: " + " -> ".join((*stack, path)))

        def replace(match: re.Match[str]) -> str:
            dep = match.group(1)
            if dep in included:
                return ""
            text = expand(dep, (*stack, path))
            included.add(dep)
            return text

        return _INCLUDE.sub(replace, _QUEUE_KEYS_HERE if path == QUEUE_KEYS else read(path))

    source = expand(f"{name}.lua", ())
    names = keys_read(source)
    if names and _QUEUE_KEYS_HERE not in source:
        raise ScriptError(f"{name}.lua reads keys.{names[0]} but does not include {QUEUE_KEYS}")
    return source.replace(_QUEUE_KEYS_HERE, queue_keys_lua(names))


class Script:
    """One Lua script, called by SHA from a sync or an asyncio client on one
    queue's keys."""

    __slots__ = ("name", "source", "sha", "key_names", "_keys", "_heads", "load_command")

    def __init__(self, name: str, source: str):
        self.name = name
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()
        self.key_names = keys_read(source)  # the fields of QueueKeys in its KEYS
        self._keys: dict[str, tuple[str, ...]] = {}  # queue name -> its KEYS
        self._heads: dict[str, Head] = {}  # queue name -> EVALSHA, SHA and KEYS, packed
        self.load_command = pack("SCRIPT", "LOAD", source)

    def keys(self, queue: QueueKeys) -> tuple[str, ...]:
        """This script's KEYS on ``queue``."""
        keys = self._keys.get(queue.name)
        if keys is None:
            keys = self._keys[queue.name] = tuple(getattr(queue, n) for n in self.key_names)
        return keys

    def command(self, queue: QueueKeys, args: list[Any]) -> tuple[EncodableT, ...]:
        """The EVALSHA command of a call on ``queue``, to send in a pipeline."""
        keys = self.keys(queue)
        return ("EVALSHA", self.sha, len(keys), *keys, *args)

    def packed(self, queue: QueueKeys, args: list[Any]) -> bytes:
        """The EVALSHA command of a call on ``queue``, packed (packing.py)."""
        head = self._heads.get(queue.name)
        if head is None:
            keys = self.keys(queue)
            head = self._heads[queue.name] = Head(("EVALSHA", self.sha, len(keys), *keys))
        return head.pack(args)

    def run(self, connection: SendsPacked, queue: QueueKeys, args: list[Any]) -> Any:
        """Call it on a connection that sends packed commands (``execute_packed``)."""
        command = self.packed(queue, args)
        try:
            return connection.execute_packed(command)
        except NoScriptError:
            connection.execute_packed(self.load_command)
            return connection.execute_packed(command)

    async def arun(self, connection: AsyncSendsPacked, queue: QueueKeys, args: list[Any]) -> Any:
        """``run`` for asyncio code."""
        command = self.packed(queue, args)
        try:
            return await connection.execute_packed(command)
        except NoScriptError:
            await connection.execute_packed(self.load_command)
            return await connection.execute_packed(command)

    def __call__(self, client: Commands, queue: QueueKeys, args: list[Any]) -> Any:
        keys = self.keys(queue)
        try:
            return client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            client.execute_command("SCRIPT", "LOAD", self.source)
            return client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)

    async def acall(self, client: AsyncCommands, queue: QueueKeys, args: list[Any]) -> Any:
        return await self.acall_on(client, self.keys(queue), args)

    async def acall_on(self, client: AsyncCommands, keys: Sequence[str], args: list[Any]) -> Any:
        """Call it on ``keys`` as they are: a script on keys of no queue's."""
        try:
            return await client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await client.execute_command("SCRIPT", "LOAD", self.source)
            return await client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)


def load(name: str) -> Script:
    return Script(name, assemble(name))


class Scripts:
    """Every script tarefa runs, assembled once per process."""

    def __init__(self) -> None:
        self.add_dependent = load("add_dependent")
        self.beat_worker = load("beat_worker")
        self.cancel = load("cancel")
        self.check_waiting = load("check_waiting")
        self.clean = load("clean")
        self.cron_schedule = load("cron_schedule")
        self.delete = load("delete")
        self.enqueue = load("enqueue")
        self.enqueue_many = load("enqueue_many")
        self.fetch = load("fetch")
        self.heartbeat = load("heartbeat")
        self.pause = load("pause")
        self.progress = load("progress")
        self.resume = load("resume")
        self.recover = load("recover")
        self.record_stats = load("record_stats")
        self.requeue = load("requeue")
        self.resolve = load("resolve")
        self.retry = load("retry")
        self.run_now = load("run_now")
        self.wait = load("wait")


_scripts: Scripts | None = None


def scripts() -> Scripts:
    global _scripts
    if _scripts is None:
        _scripts = Scripts()
    return _scripts
