"""Tasks: functions a worker runs, and the ways to enqueue them.

A task keeps its function's signature for type checkers: ``send_email.enqueue``
takes the same arguments as ``send_email``. Arguments are checked against the
signature and serialized at the caller, so a bad call raises where it is made,
not later in a worker.
"""

from __future__ import annotations

import inspect
import math
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from croniter import croniter

from .job import Job
from .store.keys import check_queue_name, job_ref

if TYPE_CHECKING:
    from .app import App

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_RESULT_TTL = 3600.0  # seconds a completed job and its result are kept
TEN_YEARS = 10 * 365 * 86400.0
MAX_PRIORITY = 1_000_000
BATCH = 1000  # jobs per enqueue_many script call: one call never blocks Redis long


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """How a task's jobs run. Set on ``@app.task``; most can be overridden per
    call with ``with_options``."""

    queue: str = "default"
    retries: int = 3  # extra attempts after the first fails
    timeout: float | None = None  # seconds; None: no limit
    backoff: float = 1.0  # first retry delay (s); doubles each attempt, with jitter
    backoff_max: float = 3600.0
    result_ttl: float | None = DEFAULT_RESULT_TTL  # 0: drop at once; None: keep forever
    cron: str | None = None  # run on this schedule ("0 * * * *"; a 6th field: seconds)
    tz: str = "UTC"  # the time zone the cron schedule is read in
    throttle: float | None = None  # s: one job per task and key in the window, repeats dropped
    debounce: float | None = None  # s: run once the calls (per task and key) pause this long
    on_success: Callable | None = None  # hooks, run in the worker (worker/hooks.py)
    on_failure: Callable | None = None
    on_retry: Callable | None = None
    pool: str | None = None  # sync tasks: "thread" or "process"; None: the worker's

    def __post_init__(self) -> None:
        check_queue_name(self.queue)
        if self.pool is not None and self.pool not in ("thread", "process"):
            raise ValueError(f"pool must be 'thread' or 'process', not {self.pool!r}")
        _check_number("retries", self.retries, integer=True)
        if self.timeout is not None:
            _check_number("timeout", self.timeout, positive=True)
        _check_number("backoff", self.backoff)
        _check_number("backoff_max", self.backoff_max)
        for window in ("throttle", "debounce"):
            if getattr(self, window) is not None:
                _check_number(window, getattr(self, window), positive=True)
        if self.throttle is not None and self.debounce is not None:
            raise ValueError("a task can throttle or debounce, not both")
        for hook in ("on_success", "on_failure", "on_retry"):
            if getattr(self, hook) is not None and not callable(getattr(self, hook)):
                raise TypeError(f"{hook} must be a function, not {getattr(self, hook)!r}")
        if self.cron is not None:
            if not isinstance(self.cron, str) or not croniter.is_valid(self.cron):
                raise ValueError(
                    f"cron must be a cron expression like '0 * * * *', not {self.cron!r}"
                )
            try:
                ZoneInfo(self.tz)
            except (ZoneInfoNotFoundError, ValueError, TypeError):
                raise ValueError(f"unknown time zone tz={self.tz!r}") from None
            try:  # valid, but does it ever fire? ("0 0 30 2 *": never)
                croniter(self.cron, datetime.now(UTC)).get_next(datetime)
            except Exception:
                raise ValueError(f"cron {self.cron!r} never runs") from None
        if self.result_ttl is not None:
            _check_number("result_ttl", self.result_ttl)
            if self.result_ttl > TEN_YEARS:
                raise ValueError("result_ttl over ten years: use None to keep results forever")

    def retry_delay(self, attempt: int) -> float:
        """Back-off before retry number ``attempt`` (1-based): exponential,
        capped, with jitter so a burst of failures does not retry in lockstep."""
        delay = min(self.backoff * 2 ** (attempt - 1), self.backoff_max)
        return delay * random.uniform(0.5, 1.0)


def _check_number(name: str, value: object, *, integer=False, positive=False) -> None:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        kind = "an int" if integer else "a number"
        raise TypeError(f"{name} must be {kind}, not {type(value).__name__}")
    if value < 0 or (positive and value == 0) or not math.isfinite(value):
        raise ValueError(f"{name} must be {'positive' if positive else '>= 0'}, not {value}")


@dataclass(frozen=True, slots=True)
class CallOptions:
    """Options of one enqueue, on top of the task's."""

    job_id: str | None = None  # de-duplication: an existing id enqueues nothing
    delay: float = 0.0  # seconds before the job may start
    at: datetime | None = None  # or: when it may start
    priority: int = 0  # 0: none (runs first, FIFO); else smaller runs sooner
    key: str = ""  # "": none; else its key's lane (fair turns, limits per key)
    parents: tuple[str, ...] = ()  # "queue|id" of the jobs it waits for (chains, groups)
    takes_results: bool = False  # a group's callback: their results come first

    def when(self) -> tuple[int, int, str]:
        """(delay in ms, priority, key) for the store."""
        if self.at is not None:  # judged at each enqueue, not when the handle was made
            delay = max(0, int((self.at - datetime.now(UTC)).total_seconds() * 1000))
            return delay, self.priority, self.key
        return int(self.delay * 1000), self.priority, self.key

    def __post_init__(self) -> None:
        if self.key and self.priority:
            raise ValueError("a job with a key runs in its key's turn: it takes no priority")
        if self.parents and (self.delay or self.at):
            raise ValueError("a job that waits for others starts when they end: no delay or at")

    def created(self, reply: object) -> bool:
        """Whether an enqueue added the job. When the id was made here, an existing
        job can only be this call's own (its reply was lost and the call retried)."""
        return reply == 1 or self.job_id is None


TASK_ONLY = {"cron", "tz", "on_success", "on_failure", "on_retry", "pool"}  # not per call
PRODUCER_ONLY = {"queue", "throttle", "debounce"}  # applied at enqueue, not by the worker
CALL_OPTIONS = ("job_id", "delay", "at", "priority", "key", "depends_on")


def _parse_call_options(
    options: dict[str, Any], *, schedule: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``with_options`` keywords into task and call options, checked."""
    task_fields = set(TaskOptions.__dataclass_fields__)
    task_opts, call_opts = {}, {}
    for name, value in options.items():
        if name in TASK_ONLY and not schedule:
            raise TypeError(f"{name} is set on @app.task, not per call")
        if name in task_fields:
            task_opts[name] = value
        elif name == "job_id":
            if value is not None and (not isinstance(value, str) or not value or len(value) > 200):
                raise ValueError(f"job_id must be a non-empty str of <= 200 chars, not {value!r}")
            call_opts["job_id"] = value
        elif name == "delay":
            if isinstance(value, timedelta):
                value = value.total_seconds()
            _check_number("delay", value)
            call_opts["delay"] = float(value)
        elif name == "priority":
            if value is not None:
                _check_number("priority", value, integer=True, positive=True)
                if value > MAX_PRIORITY:
                    raise ValueError(f"priority must be <= {MAX_PRIORITY:,}, not {value}")
            call_opts["priority"] = value or 0
        elif name == "at":
            if not isinstance(value, datetime) or value.tzinfo is None:
                raise TypeError("at= must be a timezone-aware datetime")
            call_opts["at"] = value
        elif name == "depends_on":
            call_opts["depends_on"] = value
        elif name == "key":
            if value is not None and (not isinstance(value, str) or not value or len(value) > 200):
                raise ValueError(f"key must be a non-empty str of <= 200 chars, not {value!r}")
            call_opts["key"] = value or ""
        else:
            known = sorted(task_fields | set(CALL_OPTIONS))
            raise TypeError(f"unknown option {name!r}; known options: {', '.join(known)}")
    return task_opts, call_opts


def new_job_id() -> str:
    """128 random bits as hex, like a uuid4 but ten times cheaper. The random
    module reseeds itself in a forked child, so processes never share a stream."""
    return f"{random.getrandbits(128):032x}"


def _positional_arity(signature: inspect.Signature) -> int | None:
    """How many arguments a call with positional arguments only must pass, when
    that alone makes it valid (no defaults, no *args/**kwargs): a cheap check
    for the common case before the full ``Signature.bind``."""
    kinds = {p.kind for p in signature.parameters.values()}
    if kinds - {inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD}:
        return None
    if any(p.default is not p.empty for p in signature.parameters.values()):
        return None
    return len(signature.parameters)


class Task(Generic[P, R]):
    """A function registered with an App, enqueued by name and run by workers."""

    def __init__(
        self,
        app: App,
        fn: Callable[P, R] | None,
        name: str,
        options: TaskOptions,
        call: CallOptions = CallOptions(),
        overrides: Mapping[str, Any] | None = None,
    ):
        self.app = app
        self.fn = fn
        self.name = name
        self.options = options
        self.call = call
        # Task options set for these calls only; stored with each job so that the
        # worker applies them on top of the defaults of the code it runs.
        self.overrides = dict(overrides or {})
        self._window = _window(name, options, call)
        self.signature = inspect.signature(fn) if fn is not None else None
        self._arity = _positional_arity(self.signature) if self.signature else None
        self.is_async = fn is not None and inspect.iscoroutinefunction(fn)
        self.__doc__ = getattr(fn, "__doc__", None)
        self._fields_cache: list[Any] | None = None

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
        task_opts, call_opts = _parse_call_options(options)
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
        )

    def waiting_for(self, jobs: Iterable[Job], *, takes_results: bool = False) -> Task[P, R]:
        """The same task, for jobs that run once ``jobs`` have all completed
        (see ``Job.then`` and ``Group``)."""
        refs = _parent_refs(list(jobs), self.options.queue)
        call = replace(self.call, parents=refs, takes_results=takes_results)
        return Task(self.app, self.fn, self.name, self.options, call, self.overrides)

    # -- enqueueing ----------------------------------------------------------

    def _payload(self, args: tuple, kwargs: dict) -> bytes:
        if self.signature is not None and (kwargs or len(args) != self._arity):
            try:  # a group's callback takes the results first: check with a stand-in
                self.signature.bind(*(None,) * self.call.takes_results, *args, **kwargs)
            except TypeError as exc:
                raise TypeError(f"{self.name}: {exc}") from None
        try:
            return self.app.serializer.dumps((args, kwargs))
        except TypeError as exc:
            raise TypeError(f"{self.name}: cannot serialize arguments: {exc}") from None

    def _fields(self) -> list[Any]:
        """The job fields every enqueue of this task (with these options) shares."""
        if self._fields_cache is None:
            fields: list[Any] = ["task", self.name]
            if self.overrides:
                fields += ["options", orjson.dumps(self.overrides)]
            self._fields_cache = fields
        return self._fields_cache

    def _one(self, args: tuple, kwargs: dict) -> tuple[str, list[Any]]:
        job_id = self.call.job_id or new_job_id()
        return job_id, [*self._fields(), "payload", self._payload(args, kwargs)]

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job[R]:
        """Put one job on the queue; returns its handle at once."""
        job_id, fields = self._one(args, kwargs)
        queue = self.options.queue
        if self.call.parents:
            return self._enqueue_waiting(job_id, fields)
        reply = self.app.store.enqueue(queue, job_id, self.call.when(), fields, self._window)
        return self._handle(job_id, reply)

    async def aenqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job[R]:
        """``enqueue`` for asyncio code."""
        job_id, fields = self._one(args, kwargs)
        queue = self.options.queue
        if self.call.parents:
            return await self._aenqueue_waiting(job_id, fields)
        reply = await self.app.store.aenqueue(queue, job_id, self.call.when(), fields, self._window)
        return self._handle(job_id, reply)

    def _waiting_fields(self, fields: list) -> list:
        spec = {"takes_results": self.call.takes_results, "parents": self.call.parents}
        return [*fields, "parents", orjson.dumps(spec)]

    def _enqueue_waiting(self, job_id: str, fields: list) -> Job[R]:
        """Enqueue a job that waits for its parents, then have them tell it
        when they end (a crash in between is caught by the periodic check)."""
        queue, store, parents = self.options.queue, self.app.store, self.call.parents
        fields = self._waiting_fields(fields)
        reply = store.enqueue(queue, job_id, self.call.when(), fields, waits=len(parents))
        if reply == 1:
            store.wait_for(job_ref(queue, job_id), parents)
        return self._handle(job_id, reply)

    async def _aenqueue_waiting(self, job_id: str, fields: list) -> Job[R]:
        queue, store, parents = self.options.queue, self.app.store, self.call.parents
        fields = self._waiting_fields(fields)
        reply = await store.aenqueue(queue, job_id, self.call.when(), fields, waits=len(parents))
        if reply == 1:
            await store.await_for(job_ref(queue, job_id), parents)
        return self._handle(job_id, reply)

    def _handle(self, job_id: str, reply: object) -> Job[R]:
        if isinstance(reply, list):  # a throttle or debounce window kept another job
            return Job(self.app, self.options.queue, reply[0].decode(), created=False)
        return Job(self.app, self.options.queue, job_id, created=self.call.created(reply))

    def _many(self, calls: Iterable[Any]) -> list[tuple[str, list[Any]]]:
        if self.call.job_id is not None:
            raise ValueError("enqueue_many makes one job per call: it cannot share one job_id")
        if self._window[0]:
            raise ValueError(f"enqueue_many cannot {self._window[0]}: enqueue one by one")
        if self.call.parents:
            raise ValueError("enqueue_many does not take depends_on: enqueue one by one")
        batch = []
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
            batch.append((new_job_id(), [*self._fields(), "payload", self._payload(args, kwargs)]))
        return batch

    def _handles(self, batch: list, replies: list) -> list[Job[R]]:
        queue = self.options.queue
        return [
            Job(self.app, queue, i, created=self.call.created(r))
            for (i, _), r in zip(batch, replies, strict=True)
        ]

    def enqueue_many(self, calls: Iterable[Any]) -> list[Job[R]]:
        """Enqueue many jobs, one round trip per thousand: ``calls`` holds one
        tuple of positional arguments (or one dict of keyword arguments) per job.
        All arguments are checked before anything is sent."""
        batch = self._many(calls)
        replies = []
        for chunk in _chunks(batch):  # one script call never blocks Redis for long
            replies += self.app.store.enqueue_many(self.options.queue, self.call.when(), chunk)
        return self._handles(batch, replies)

    async def aenqueue_many(self, calls: Iterable[Any]) -> list[Job[R]]:
        """``enqueue_many`` for asyncio code."""
        batch = self._many(calls)
        replies = []
        for chunk in _chunks(batch):
            store = self.app.store
            replies += await store.aenqueue_many(self.options.queue, self.call.when(), chunk)
        return self._handles(batch, replies)


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


def _window(name: str, options: TaskOptions, call: CallOptions) -> tuple[str, int, str]:
    """The store's de-duplication window for these options: (kind, ms, scope)."""
    for kind in ("throttle", "debounce"):
        seconds = getattr(options, kind)
        if seconds is not None:
            if call.job_id is not None:
                raise ValueError(f"{kind} picks the job to keep; it cannot take a job_id")
            if call.parents:
                raise ValueError(f"a job that waits for others cannot {kind}")
            return kind, max(1, int(seconds * 1000)), f"{name}:{call.key}"
    return "", 0, ""


def _chunks(batch: list) -> Iterable[list]:
    return (batch[i : i + BATCH] for i in range(0, len(batch), BATCH))
