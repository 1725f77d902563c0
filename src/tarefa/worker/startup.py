"""A worker's start: once Redis answers, it registers (so ``tarefa info`` and
the dashboard list it), recovers dead workers' jobs, and reads Redis's
memory policy, saying loudly when Redis may delete jobs to make room."""

from __future__ import annotations

import logging
import os
import socket
import time

from ..store import REFUSED, redacted
from .housekeeping import recover
from .memory import format_size
from .reconnect import REDIS_ERRORS, Backoff
from .shared import Shared

log = logging.getLogger("tarefa.worker")


async def connect(shared: Shared) -> bool:
    """Register, and recover dead workers' jobs, once Redis answers; False
    if stopped before it did. Wrong credentials or a missing ACL
    permission end the start (raised): waiting does not mend them."""
    backoff = Backoff()
    while not shared.stop.requested:
        shared.changed.clear()
        try:
            await _register(shared)
            await recover(shared)
            await _check_memory_policy(shared)
            return True
        except REFUSED:
            raise
        except REDIS_ERRORS as exc:
            await shared.sleep(backoff.next(exc))
    return False


async def _register(shared: Shared) -> None:
    config = shared.config
    info = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "queues": ",".join(config.queues),
        "concurrency": config.concurrency,
        "started_at": int(time.time() * 1000),
        "running": 0,
    }
    if not await shared.store.register_worker(config.id, info, config.lease_ms):
        log.warning(
            "Redis is full (maxmemory reached): it refused this worker's registration, so "
            "tarefa info and the dashboard do not list it yet. It runs jobs all the same "
            "(what frees memory goes through), and registers once there is room"
        )


async def _check_memory_policy(shared: Shared) -> None:
    """Say, loudly, when Redis may delete jobs to make room."""
    memory = await shared.store.amemory()
    shared.memory_policy = memory.policy
    if memory.warning:
        log.warning("%s (Redis at %s)", memory.warning, redacted(shared.store.url))
    elif memory.unknown:
        log.info("%s", memory.unknown)


def log_start(shared: Shared) -> None:
    config, processes = shared.config, shared.processes
    max_memory = processes.max_memory
    on_processes = processes.default == "process"
    log.info(
        "worker %s: queues %s, concurrency %d%s%s%s%s%s; Redis: %s",
        config.id, ",".join(config.queues), config.concurrency,
        ", process pool" if on_processes else "",
        f", max memory {format_size(max_memory)} per job process" if max_memory else "",
        " (pool='process' tasks only)" if max_memory and not on_processes else "",
        ", burst" if config.burst else "",
        f", stops after {config.max_jobs} jobs" if config.max_jobs else "",
        shared.store.clients.where,
    )  # fmt: skip
