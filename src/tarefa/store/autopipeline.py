"""One event loop's connection for the asyncio producer's hot calls, shared by
all its coroutines: the calls made while one round trip is on its way go out
together in the next one.

``await pipeline.execute_packed(command)`` sends a command packed already
(packing.py). On an idle connection it goes at once, from its caller's task.
Calls made while one is on its way queue up; then one task, the *drain*, owns
the connection: it writes everything queued in one write, reads the replies in
order, hands each caller its own (an error reply is that caller's exception
alone), then takes what was queued meanwhile. So a lone caller pays one round
trip, and a busy loop (a web app's concurrent requests) shares round trips;
and no two coroutines ever use the connection at once, nor two loops (a
pipeline belongs to the loop that made it: ``Clients.autopipeline``).

Nothing is answered before Redis replied. A connection that fails or times
out mid-batch is dropped and the commands not yet answered are sent again on a
new one, under the client's retry policy (safe for what goes through here: an
enqueue carries its job id, so a retry finds the job its first attempt made);
once the retries are spent, every caller not yet answered gets the error. A
caller cancelled before its command was written is not sent at all.

It skips what redis-py's asyncio client does per command and a batch need not:
taking a connection from the pool and giving it back (with a lock), a task per
write to time it (``asyncio.wait_for``) and a timer per reply. Replies are timed
here instead (``ReplyTimer``), each within the client's reply timeout, by one
timer that moves only when it fires.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import redis
import redis.asyncio
from redis.exceptions import ResponseError

from .sentinel import asks_sentinel


class ReplyTimer:
    """Times out the exchange in flight when Redis has sent nothing for
    ``timeout`` seconds, as ``asyncio.timeout`` would, without a timer per
    reply: the exchange notes each reply (``heard``), and the one timer,
    when it fires, moves to the last reply's deadline or cancels the task."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float):
        self._loop = loop
        self._timeout = timeout
        self._task: asyncio.Task[Any] | None = None  # the task exchanging now
        self._cancelling = 0  # its cancellation requests before the exchange
        self._heard = 0.0  # loop time of the last write or reply
        self._timer: asyncio.TimerHandle | None = None
        self.expired = False

    def start(self) -> None:
        """An exchange begins, in the current task."""
        task = asyncio.current_task(self._loop)
        assert task is not None
        self._task, self._cancelling, self.expired = task, task.cancelling(), False
        self.heard()
        if self._timer is None:
            self._timer = self._loop.call_at(self._heard + self._timeout, self._fire)

    def heard(self) -> None:
        self._heard = self._loop.time()

    def stop(self) -> None:
        self._task = None

    def timed_out(self) -> bool:
        """Whether the CancelledError being handled came from this timer (and
        not also from elsewhere): the exchange then raises a timeout instead."""
        return self.expired and self._task is not None and self._task.uncancel() <= self._cancelling

    def _fire(self) -> None:
        self._timer = None
        if self._task is None:
            return  # nothing in flight: the next exchange sets it again
        due = self._heard + self._timeout
        if self._loop.time() < due:
            self._timer = self._loop.call_at(due, self._fire)
        else:
            self.expired = True
            self._task.cancel()


class _Queued:
    __slots__ = ("command", "future")

    def __init__(self, command: bytes, future: asyncio.Future[Any]):
        self.command = command
        self.future = future


class AutoPipeline:
    """The connection of one event loop, shared by its coroutines' calls."""

    def __init__(self, client: redis.asyncio.Redis, timeout: float):
        pool = client.connection_pool
        # Replies are timed here, not by the connection (see the module's doc).
        settings = dict(pool.connection_kwargs, socket_timeout=None)
        self._connection = pool.connection_class(**settings)
        self._retry = self._connection.retry
        self._timeout = timeout
        self._loop = asyncio.get_running_loop()
        self._timer = ReplyTimer(self._loop, timeout)
        self._queued: list[_Queued] = []
        self._drain: asyncio.Task[None] | None = None  # the task sending queued calls
        self._leading = False  # a call is on its way in its caller's task

    async def execute_packed(self, command: bytes) -> Any:
        """Send ``command``, at once or with the next batch; its reply (an
        error reply raises, as its exception)."""
        if self._drain is None and not self._leading:
            return await self._lead(command)
        future = self._loop.create_future()
        self._queued.append(_Queued(command, future))
        return await future

    async def aclose(self) -> None:
        """Close the connection, once the calls queued now are answered."""
        while self._drain is not None:
            await asyncio.wait([self._drain])
        await self._connection.disconnect()

    async def _lead(self, command: bytes) -> Any:
        """A call on an idle connection goes at once, in its caller's task:
        no task to start, no hand-over of the reply. The calls made meanwhile
        queue up, for the drain to send once this one is answered."""
        self._leading = True
        try:
            return await self._retry.call_with_retry(
                lambda: self._exchange_one(command), self._failed
            )
        except ResponseError:
            raise  # its own answer: Redis is there, the calls queued go on
        except Exception as exc:  # Redis unreachable, the retries spent
            self._fail_queued(exc)
            raise
        finally:
            self._leading = False
            if self._queued:
                self._drain = self._loop.create_task(self._run())

    async def _run(self) -> None:
        """The drain: sends what is queued, batch after batch, until nothing is."""
        batch: deque[_Queued] = deque()
        try:
            while self._queued:
                batch.extend(q for q in self._queued if not q.future.cancelled())
                self._queued = []
                await self._send(batch)
        except BaseException as exc:  # Redis unreachable, or this task cancelled
            error = exc if isinstance(exc, Exception) else redis.ConnectionError(repr(exc))
            self._queued[:0] = batch
            self._fail_queued(error)
            if not isinstance(exc, Exception):
                raise
        finally:
            self._drain = None

    def _fail_queued(self, error: Exception) -> None:
        """Once a batch has spent its retries, the calls queued behind it fail
        too, rather than wait out as many again on a Redis not answering: none
        was sent, and each caller learns at once that Redis is unreachable."""
        for queued in self._queued:
            if not queued.future.done():
                queued.future.set_exception(error)
        self._queued = []

    async def _send(self, batch: deque[_Queued]) -> None:
        """Exchange ``batch`` under the client's retry policy; raises once the
        retries are spent."""
        if batch:
            await self._retry.call_with_retry(lambda: self._exchange(batch), self._failed)

    async def _exchange(self, batch: deque[_Queued]) -> None:
        """Write the batch, then read its replies in order; an answered call
        leaves the batch at once, so a retry sends only the others."""
        connection = self._connection
        live = [q for q in batch if not q.future.cancelled()]  # (a retry: callers gone)
        batch.clear()
        batch.extend(live)
        timer = self._timer
        timer.start()
        try:
            if not connection.is_connected and asks_sentinel(connection):
                await connection.connect()
            await connection.send_packed_command([q.command for q in batch], False)
            while batch:
                try:
                    reply: Any = await connection.read_response()
                except ResponseError as exc:
                    reply = exc
                timer.heard()
                queued = batch.popleft()
                if not queued.future.done():  # (its caller may have been cancelled)
                    if isinstance(reply, ResponseError):
                        queued.future.set_exception(reply)
                    else:
                        queued.future.set_result(reply)
        except asyncio.CancelledError:
            if timer.timed_out():  # (redis-py dropped the connection, cut mid-read)
                raise self._timeout_error() from None
            raise
        finally:
            timer.stop()

    async def _exchange_one(self, command: bytes) -> Any:
        """``_exchange`` of a lone command: its reply, or its error reply raised."""
        timer = self._timer
        timer.start()
        try:
            if not self._connection.is_connected and asks_sentinel(self._connection):
                await self._connection.connect()
            await self._connection.send_packed_command((command,), False)
            return await self._connection.read_response()
        except asyncio.CancelledError:
            if timer.timed_out():
                raise self._timeout_error() from None
            raise
        finally:
            timer.stop()

    def _timeout_error(self) -> redis.TimeoutError:
        return redis.TimeoutError(f"no reply from Redis within {self._timeout:g} s (timeout)")

    async def _failed(self, _error: Exception) -> None:
        await self._connection.disconnect()
