"""Loads the Lua scripts under ``lua/`` and calls them by SHA.

A script may pull in shared pieces with a line ``--- @include "includes/x.lua"``;
they are resolved once, here, at load time (each file at most once per script),
and a missing or circular include is an error. Scripts are called with EVALSHA
and loaded again transparently when the server does not know them (a Redis
restart or failover empties its script cache).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from importlib import resources
from typing import Any

from redis.exceptions import NoScriptError

from .keys import SCRIPT_KEY_NAMES

_INCLUDE = re.compile(r'^--- @include "([^"]+)"\s*$', re.MULTILINE)


class ScriptError(Exception):
    """A Lua script could not be assembled from its file and includes."""


def queue_keys_lua() -> str:
    """``includes/queue_keys.lua``, made from keys.py so the two cannot disagree:
    the ``keys`` table, each of the queue's keys by name."""
    lines = [f"  {name} = KEYS[{i}]," for i, name in enumerate(SCRIPT_KEY_NAMES, 1)]
    return "-- The queue's keys (store/keys.py: QueueKeys.script_keys).\nlocal keys = {\n" + (
        "\n".join(lines) + "\n}\n"
    )


def _read(path: str) -> str:
    if path == "includes/queue_keys.lua":
        return queue_keys_lua()
    try:
        return resources.files("tarefa.store").joinpath("lua", path).read_text("utf-8")
    except FileNotFoundError:
        raise ScriptError(f"Lua file not found: {path}") from None


def assemble(name: str, read=_read) -> str:
    """The source of script ``name`` with its includes resolved."""
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

        return _INCLUDE.sub(replace, read(path))

    return expand(f"{name}.lua", ())


class Script:
    """One Lua script, called by SHA from a sync or an asyncio client."""

    __slots__ = ("name", "source", "sha")

    def __init__(self, name: str, source: str):
        self.name = name
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __call__(self, client, keys: Sequence[str], args: list[Any]) -> Any:
        try:
            return client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            client.execute_command("SCRIPT", "LOAD", self.source)
            return client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)

    async def acall(self, client, keys: Sequence[str], args: list[Any]) -> Any:
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
        self.cancel = load("cancel")
        self.check_waiting = load("check_waiting")
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
        self.requeue = load("requeue")
        self.resolve = load("resolve")
        self.retry = load("retry")
        self.wait = load("wait")


_scripts: Scripts | None = None


def scripts() -> Scripts:
    global _scripts
    if _scripts is None:
        _scripts = Scripts()
    return _scripts
