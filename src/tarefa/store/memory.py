"""What Redis does when its memory is full, and whether tarefa can live with it.

tarefa needs ``maxmemory-policy noeviction``: a full Redis then refuses new
jobs (``RedisFull``) and keeps every job it has. Any other policy lets Redis
delete keys to make room, silently: with an ``allkeys-*`` policy, queued and
running jobs themselves; with a ``volatile-*`` one, the keys that expire
(completed jobs' results, cancelled jobs, worker registrations, throttle and
debounce windows), before their time.

The policy is read with ``CONFIG GET``, which ACLs and managed services often
refuse, else from ``INFO memory``; when both are refused it is unknown, and
said so, not guessed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis import exceptions as redis_errors

from .base import StoreBase

SAFE_POLICY = "noeviction"


@dataclass(frozen=True, slots=True)
class RedisMemory:
    """Redis's memory settings as far as it tells them (None: it would not)."""

    policy: str | None  # maxmemory-policy
    maxmemory: int | None  # bytes; 0: no limit
    used: int | None  # used_memory, bytes

    @classmethod
    def parse(cls, config: Mapping[str, Any], info: Mapping[str, Any]) -> RedisMemory:
        """From ``CONFIG GET maxmemory*`` and ``INFO memory`` (either may be empty)."""
        policy = config.get("maxmemory-policy") or info.get("maxmemory_policy")
        maxmemory = config.get("maxmemory", info.get("maxmemory"))
        used = info.get("used_memory")
        return cls(
            policy=str(policy) if policy else None,
            maxmemory=None if maxmemory is None else int(maxmemory),
            used=None if used is None else int(used),
        )

    @property
    def warning(self) -> str | None:
        """Why the policy may lose tarefa's data, for a person; None when it
        is noeviction, or unknown (see ``unknown``)."""
        if self.policy is None or self.policy == SAFE_POLICY:
            return None
        if self.policy.startswith("allkeys-"):
            lost = (
                "any key, jobs among them, queued or running: they vanish without a trace, "
                "and workers count and log the ones they find gone as lost"
            )
        else:
            lost = (
                "keys that expire: completed jobs' results, cancelled jobs, worker "
                "registrations, throttle and debounce windows, before their time"
            )
        unset = (
            " (maxmemory is 0 now: no limit, so nothing is evicted yet)"
            if not self.maxmemory
            else ""
        )
        return (
            f"Redis's maxmemory-policy is {self.policy}{unset}: when its memory is full it "
            f"deletes {lost}. tarefa needs maxmemory-policy {SAFE_POLICY} (then a full Redis "
            "refuses new jobs and keeps every job it has): set it (CONFIG SET "
            f"maxmemory-policy {SAFE_POLICY}, or in redis.conf), or give tarefa a Redis of "
            "its own"
        )

    @property
    def unknown(self) -> str | None:
        """Why the policy is not known, when it is not."""
        if self.policy is not None:
            return None
        return (
            "Redis would not tell its maxmemory-policy (CONFIG GET and INFO refused, as ACLs "
            f"and managed services may): make sure it is {SAFE_POLICY}"
        )


class MemorySettings(StoreBase):
    """Reading Redis's memory settings (a cluster's: ``fullest`` master's)."""

    def memory(self) -> RedisMemory:
        if self.clients.is_cluster:
            return fullest([_memory(node.sync) for node in self.clients.masters()])
        return _memory(self.clients.sync)

    async def amemory(self) -> RedisMemory:
        if self.clients.is_cluster:
            return fullest([await _amemory(node.aio) for node in await self.clients.amasters()])
        return await _amemory(self.clients.aio)


def fullest(masters: Sequence[RedisMemory]) -> RedisMemory:
    """A cluster's memory as its fullest master's (used memory nearest its
    maxmemory, or the most used where none has a limit): a master that is full
    refuses the new jobs of every queue it holds. Its policy is any master's
    that is not noeviction, so the warning is not missed; unknown if any
    master's is."""
    policies = [m.policy for m in masters]
    unsafe = [p for p in policies if p is not None and p != SAFE_POLICY]
    policy = unsafe[0] if unsafe else None if None in policies else SAFE_POLICY
    nearest = max(
        masters, key=lambda m: ((m.used or 0) / m.maxmemory if m.maxmemory else 0, m.used or 0)
    )
    return RedisMemory(policy=policy, maxmemory=nearest.maxmemory, used=nearest.used)


def _memory(client: Any) -> RedisMemory:
    return RedisMemory.parse(
        _refused_as_empty(client.config_get, "maxmemory*"),
        _refused_as_empty(client.info, "memory"),
    )


async def _amemory(client: Any) -> RedisMemory:
    config = await _arefused_as_empty(client.config_get("maxmemory*"))
    return RedisMemory.parse(config, await _arefused_as_empty(client.info("memory")))


def _refused_as_empty(call: Callable[..., Any], *args: Any) -> Mapping[str, Any]:
    try:
        return cast(Mapping[str, Any], call(*args))
    except redis_errors.ResponseError:  # an ACL, a renamed or disabled command
        return {}


async def _arefused_as_empty(reply: Awaitable[Any]) -> Mapping[str, Any]:
    try:
        return cast(Mapping[str, Any], await reply)
    except redis_errors.ResponseError:
        return {}
