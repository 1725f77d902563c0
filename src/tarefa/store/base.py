"""What every part of the store shares: the connections, the scripts, and how
a script call is run from sync or asyncio code.

Each operation builds its script call (``Call``) once and runs it from sync
code (``op``) or asyncio code (``await aop``).
"""

from __future__ import annotations

from typing import Any

from .connection import Clients
from .keys import QUEUES, QueueKeys
from .scripts import Script, scripts

Call = tuple[Script, QueueKeys, list[Any]]  # a script, the queue it runs on, its ARGV

FINAL_STATES = (b"completed", b"failed", b"cancelled")


class StoreBase:
    """One Redis: its clients and tarefa's scripts."""

    def __init__(self, url: str | None = None, *, retries: int = 3):
        self.clients = Clients(url, retries=retries)
        self.scripts = scripts()
        self._known_queues: set[str] = set()

    @property
    def url(self) -> str:
        return self.clients.url

    def _run(self, call: Call) -> Any:
        script, queue, args = call
        return script(self.clients.direct, queue, args)

    async def _arun(self, call: Call) -> Any:
        script, queue, args = call
        return await script.acall(self.clients.aio, queue, args)

    def _register_queue(self, queue: str) -> None:
        # The registry is a global key, outside the queue's slot: a separate
        # command, sent once per process and queue.
        if queue not in self._known_queues:
            self.clients.sync.sadd(QUEUES, queue)
            self._known_queues.add(queue)

    async def _aregister_queue(self, queue: str) -> None:
        if queue not in self._known_queues:
            await self.clients.aio.sadd(QUEUES, queue)
            self._known_queues.add(queue)
