"""Tasks: functions a worker runs, and the ways to enqueue them.

A task keeps its function's signature for type checkers: ``send_email.enqueue``
takes the same arguments as ``send_email``. Arguments are checked against the
signature and serialized at the caller, so a bad call raises where it is made,
not later in a worker.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, ParamSpec, TypeVar

import orjson

from .batch import Batch, BatchSend, Fields
from .call_check import CallCheck
from .errors import NotDurable, PayloadTooLarge
from .job import Job
from .options import PRODUCER_ONLY, CallOptions, TaskOptions, dedupe_window, parse_call_options
from .records import Added, Enqueued
from .store import job_ref

if TYPE_CHECKING:
    from .backend import Owner, When
    from .tracing import Tracing

P = ParamSpec("P")
R = TypeVar("R")


class Prepared(NamedTuple):
    """A job ready to be sent (``Task.prepare``)."""

    queue: str
    job_id: str
    when: When  # (delay in ms, priority, key)
    fields: Fields


UNTRACED = nullcontext()  # what an App without a tracer sends within


def new_job_id() -> str:
    """128 random bits as hex, like a uuid4 but ten times cheaper. The random
    module reseeds itself in a forked child, so processes never share a stream."""
    return f"{random.getrandbits(128):032x}"


class Task(Generic[P, R]):
    """A function registered with an App, enqueued by name and run by workers."""

    def __init__(
        self,
        app: Owner,
        fn: Callable[P, R] | None,
        name: str,
        options: TaskOptions,
        call: CallOptions = CallOptions(),  # noqa: B008 (frozen: one default is safe)
        overrides: Mapping[str, Any] | None = None,
        *,
        like: Task[P, R] | None = None,
    ):
        self.app = app
        self.fn = fn
        self.name = name
        self.options = options
        self.call = call
        # Task options set for these calls only; stored with each job so that the
        # worker applies them on top of the defaults of the code it runs.
        self.overrides = dict(overrides or {})
        self._window = dedupe_window(name, options, call)
        # Both set below, from ``like`` or worked out afresh.
        self.signature: inspect.Signature | None
        self._check: CallCheck | None
        if like is not None and like.fn is fn and like.call.takes_results == call.takes_results:
            # The same function (with_options, waiting_for): what its signature
            # allows was worked out already.
            self.signature, self._check = like.signature, like._check
        else:
            self.signature = inspect.signature(fn) if fn is not None else None
            # A group's callback takes the results first: checked with stand-ins.
            leading = int(call.takes_results)
            self._check = CallCheck(self.signature, leading) if self.signature else None
        self.is_async = fn is not None and inspect.iscoroutinefunction(fn)
        self.__doc__ = getattr(fn, "__doc__", None)
        self._fields_cache: Fields | None = None

    def __repr__(self) -> str:
        return f"<Task {self.name} queue={self.options.queue}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call the function directly, here, without a queue."""
        if self.fn is None:
            raise TypeError(f"task {self.name} is known by name only; it cannot run here")
        return self.fn(*args, **kwargs)

    def with_options(self, **options: Any) -> Task[P, R]:
        """The same task with options for the next enqueues: ``job_id``, ``delay``
        (seconds or timedelta), ``at`` (aware datetime), ``priority``, ``key``
        (its lane: fair turns and limits per key), ``queue``, ``retries``,
        ``timeout``, ``result_ttl``, ``backoff``, ``throttle``, ``debounce``..."""
        task_opts, call_opts = parse_call_options(options)
        if "depends_on" in call_opts:
            queue = task_opts.get("queue", self.options.queue)
            call_opts["parents"] = _parent_refs(call_opts.pop("depends_on"), queue)
        return Task(
            self.app,
            self.fn,
            self.name,
            replace(self.options, **task_opts) if task_opts else self.options,
            replace(self.call, **call_opts) if call_opts else self.call,
            self.overrides | {k: v for k, v in task_opts.items() if k not in PRODUCER_ONLY},
            like=self,
        )

    def waiting_for(
        self, jobs: Iterable[Job[object]], *, takes_results: bool = False
    ) -> Task[P, R]:
        """The same task, for jobs that run once ``jobs`` have all completed
        (see ``Job.then`` and ``Group``)."""
        refs = _parent_refs(list(jobs), self.options.queue)
        call = replace(self.call, parents=refs, takes_results=takes_results)
        return Task(self.app, self.fn, self.name, self.options, call, self.overrides, like=self)

    # -- enqueueing ----------------------------------------------------------

    def _payload(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
        if self._check is not None:
            try:
                self._check(args, kwargs)
            except TypeError as exc:
                raise TypeError(f"{self.name}: {exc}") from None
        try:
            payload = self.app.serializer.dumps((args, kwargs))
        except TypeError as exc:
            raise TypeError(f"{self.name}: cannot serialize arguments: {exc}") from None
        limit = self.app.max_payload_bytes
        if limit is not None and len(payload) > limit:
            raise PayloadTooLarge(self.name, len(payload), limit)
        return payload

    def _fields(self) -> Fields:
        """The job fields every enqueue of this task (with these options) shares."""
        if self._fields_cache is None:
            fields: Fields = ["task", self.name]
            if self.overrides:
                fields += ["options", orjson.dumps(self.overrides)]
            self._fields_cache = fields
        return self._fields_cache

    def _one(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, Fields]:
        job_id = self.call.job_id or new_job_id()
        return job_id, [*self._fields(), "payload", self._payload(args, kwargs)]

    def _durable(self) -> bool:
        durable = self.options.durable
        return self.app.durable if durable is None else durable

    def _sending(self, batch: Batch, operation: str = "send") -> AbstractContextManager[object]:
        """Around sending ``batch``: the App's tracer's span, whose context
        each job then carries; nothing without a tracer."""
        tracing = self.app.tracing
        if tracing is None:
            return UNTRACED
        return _traced(tracing, self.options.queue, self.name, batch, operation)

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job[R]:
        """Put one job on the queue; returns its handle at once (with
        ``durable``, once Redis has fsynced it)."""
        job_id, fields = self._one(args, kwargs)
        with self._sending([(job_id, fields)]):
            return self._put(job_id, fields)

    def enqueue_on_commit(self, *args: P.args, **kwargs: P.kwargs) -> Job[R]:
        """Enqueue once the database transaction around this call commits,
        and never if it rolls back: the job cannot start before the rows it
        reads exist. Needs a framework's hook (``tarefa.contrib.django`` in
        INSTALLED_APPS sets it); outside a transaction, it enqueues at once.

        The arguments are checked now and the handle returned now, with its id
        (the job exists only once the transaction commits). The enqueue at the
        commit can still fail, Redis being away: a job that must survive that
        goes through ``tarefa.outbox``, in the transaction itself."""
        if self.app.on_commit is None:
            raise RuntimeError(
                f"{self.name}.enqueue_on_commit needs a transaction to wait for: add "
                "'tarefa.contrib.django' to INSTALLED_APPS (or set app.on_commit); with a "
                "SQLAlchemy Session: tarefa.contrib.sqlalchemy's enqueue_on_commit(session, task)"
            )
        return self.enqueue_later(self.app.on_commit, *args, **kwargs)

    def enqueue_later(
        self,
        register: Callable[[Callable[[], Job[R]]], object],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> Job[R]:
        """Check the arguments and choose the job's id now, and hand
        ``register`` the enqueue, for it to call once, later: a transaction's
        commit hook (``enqueue_on_commit``, ``tarefa.contrib.sqlalchemy``).
        Returns the job's handle at once, with its id; the job exists once
        ``register`` has made that call."""
        job_id, fields = self._one(args, kwargs)

        def send() -> Job[R]:
            with self._sending([(job_id, fields)]):
                return self._put(job_id, fields)

        register(send)
        return Job(self.app, self.options.queue, job_id)

    def prepare(self, *args: P.args, **kwargs: P.kwargs) -> Prepared:
        """What ``enqueue`` would send, checked and serialized, without sending
        it: for ``tarefa.outbox``, which keeps it in the application's database
        until its relay sends it. A throttle, a debounce or ``depends_on``
        needs Redis at the call, so they raise ValueError here."""
        if self._window[0]:
            raise ValueError(f"{self.name}: the outbox cannot {self._window[0]}: enqueue it")
        if self.call.parents:
            raise ValueError(f"{self.name}: the outbox does not take depends_on: enqueue it")
        job_id, fields = self._one(args, kwargs)
        with self._sending([(job_id, fields)], "create"):
            return Prepared(self.options.queue, job_id, self.call.when(), fields)

    def _put(self, job_id: str, fields: Fields) -> Job[R]:
        if self.call.parents:
            return self._enqueue_waiting(job_id, fields)
        queue, when, window = self.options.queue, self.call.when(), self._window
        try:
            done = self.app.backend.enqueue(queue, job_id, when, fields, window, 0, self._durable())
        except NotDurable as exc:
            exc.jobs = [self._handle(job_id, exc.reply)]
            raise
        return self._handle(job_id, done)

    async def aenqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job[R]:
        """``enqueue`` for asyncio code."""
        job_id, fields = self._one(args, kwargs)
        with self._sending([(job_id, fields)]):
            return await self._aput(job_id, fields)

    async def _aput(self, job_id: str, fields: Fields) -> Job[R]:
        if self.call.parents:
            return await self._aenqueue_waiting(job_id, fields)
        queue, when, window = self.options.queue, self.call.when(), self._window
        try:
            store = self.app.backend
            done = await store.aenqueue(queue, job_id, when, fields, window, 0, self._durable())
        except NotDurable as exc:
            exc.jobs = [self._handle(job_id, exc.reply)]
            raise
        return self._handle(job_id, done)

    def _waiting_fields(self, fields: Fields) -> Fields:
        spec = {"takes_results": self.call.takes_results, "parents": self.call.parents}
        return [*fields, "parents", orjson.dumps(spec)]

    def _enqueue_waiting(self, job_id: str, fields: Fields) -> Job[R]:
        """Enqueue a job that waits for its parents, then have them tell it
        when they end (a crash in between is caught by the periodic check)."""
        queue, store, parents = self.options.queue, self.app.backend, self.call.parents
        fields = self._waiting_fields(fields)
        when, durable = self.call.when(), self._durable()
        try:
            done = store.enqueue(queue, job_id, when, fields, waits=len(parents), durable=durable)
        except NotDurable as exc:  # enqueued all the same: register it on its parents
            exc.jobs = [self._handle(job_id, exc.reply)]
            if exc.reply.added is Added.CREATED:
                store.wait_for(job_ref(queue, job_id), parents)
            raise
        if done.added is Added.CREATED:
            store.wait_for(job_ref(queue, job_id), parents)
        return self._handle(job_id, done)

    async def _aenqueue_waiting(self, job_id: str, fields: Fields) -> Job[R]:
        queue, store, parents = self.options.queue, self.app.backend, self.call.parents
        fields = self._waiting_fields(fields)
        when, durable = self.call.when(), self._durable()
        try:
            done = await store.aenqueue(
                queue, job_id, when, fields, waits=len(parents), durable=durable
            )
        except NotDurable as exc:  # enqueued all the same: register it on its parents
            exc.jobs = [self._handle(job_id, exc.reply)]
            if exc.reply.added is Added.CREATED:
                await store.await_for(job_ref(queue, job_id), parents)
            raise
        if done.added is Added.CREATED:
            await store.await_for(job_ref(queue, job_id), parents)
        return self._handle(job_id, done)

    def _handle(self, job_id: str, done: Enqueued) -> Job[R]:
        return Job(self.app, self.options.queue, done.job_id, created=self.call.created(done))

    def _many(self, calls: Iterable[Any]) -> Batch:
        if self.call.job_id is not None:
            raise ValueError("enqueue_many makes one job per call: it cannot share one job_id")
        if self._window[0]:
            raise ValueError(f"enqueue_many cannot {self._window[0]}: enqueue one by one")
        if self.call.parents:
            raise ValueError("enqueue_many does not take depends_on: enqueue one by one")
        batch: Batch = []
        for call in calls:
            if isinstance(call, Mapping):
                args, kwargs = (), dict(call)
            elif isinstance(call, tuple | list):
                args, kwargs = tuple(call), {}
            else:
                raise TypeError(
                    f"{self.name}.enqueue_many: each call is a tuple of positional "
                    f"arguments or a dict of keyword arguments, not {type(call).__name__}"
                )
            try:
                payload = self._payload(args, kwargs)
            except PayloadTooLarge as exc:
                where = f" (call #{len(batch)} of enqueue_many, counting from 0)"
                raise PayloadTooLarge(self.name, exc.size, exc.limit, where) from None
            batch.append((new_job_id(), [*self._fields(), "payload", payload]))
        return batch

    def _handles(self, replies: list[Enqueued]) -> list[Job[R]]:
        queue = self.options.queue
        return [
            Job(self.app, queue, done.job_id, created=self.call.created(done)) for done in replies
        ]

    def enqueue_many(self, calls: Iterable[Any]) -> list[Job[R]]:
        """Enqueue many jobs, one round trip per thousand: ``calls`` holds one
        tuple of positional arguments (or one dict of keyword arguments) per job.
        All arguments are checked before anything is sent: one bad call, and
        none of the batch is enqueued."""
        batch = self._many(calls)
        with self._sending(batch):
            return self._put_many(batch)

    def _put_many(self, batch: Batch) -> list[Job[R]]:
        backend, queue, durable = self.app.backend, self.options.queue, self._durable()
        sent = BatchSend(batch)
        for n, chunk in sent.chunks():
            with sent.chunk(n):
                sent.replies += backend.enqueue_many(queue, self.call.when(), chunk, durable)
        return sent.handles(self._handles)

    async def aenqueue_many(self, calls: Iterable[Any]) -> list[Job[R]]:
        """``enqueue_many`` for asyncio code."""
        batch = self._many(calls)
        with self._sending(batch):
            return await self._aput_many(batch)

    async def _aput_many(self, batch: Batch) -> list[Job[R]]:
        backend, queue, durable = self.app.backend, self.options.queue, self._durable()
        sent = BatchSend(batch)
        for n, chunk in sent.chunks():
            with sent.chunk(n):
                sent.replies += await backend.aenqueue_many(queue, self.call.when(), chunk, durable)
        return sent.handles(self._handles)


def _parent_refs(depends_on: Any, queue: str) -> tuple[str, ...]:
    """``depends_on``: a Job, a job id (in the task's own queue), or a list of them."""
    items = depends_on if isinstance(depends_on, list | tuple) else [depends_on]
    refs = []
    for item in items:
        if isinstance(item, Job):
            refs.append(job_ref(item.queue, item.id))
        elif isinstance(item, str) and item:
            refs.append(job_ref(queue, item))
        else:
            raise TypeError(f"depends_on takes jobs or job ids, not {type(item).__name__}")
    if not refs:
        raise ValueError("depends_on needs at least one job")
    return tuple(dict.fromkeys(refs))


@contextmanager
def _traced(
    tracing: Tracing, queue: str, task: str, batch: Batch, operation: str
) -> Iterator[None]:
    with tracing.sending(queue, task, [job_id for job_id, _ in batch], operation) as trace:
        if trace is not None:
            for _, fields in batch:
                fields += ("trace", trace)
        yield
