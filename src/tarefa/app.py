"""The App: where tasks are registered, and the entry to Redis for producers."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from .errors import AmbiguousJob, JobNotFound
from .job import Job
from .job_scopes import JobScope
from .limits import DEFAULT_SETTINGS, FAILED_TTL, KEEP_FAILED, QueueSettings
from .options import (
    MAX_PAYLOAD_BYTES,
    MAX_RESULT_BYTES,
    TaskOptions,
    check_payload_limit,
    check_timeout,
    parse_call_options,
)
from .serializer import Serializer, get_serializer
from .store import TIMEOUT, Store, check_queue_name, check_url
from .task import Task

if TYPE_CHECKING:
    from .backend import Backend, Owner
    from .tracing import Tracing

P = ParamSpec("P")
R = TypeVar("R")

# Testing mode's backend: tarefa.testing puts its maker here as it is imported
# (tarefa's __init__ imports it). So this module needs nothing above it, though
# testing mode runs jobs with the worker's code.
_testing_backend: list[Callable[[App], Backend]] = []


def register_testing_backend(make: Callable[[App], Backend]) -> None:
    _testing_backend[:] = [make]


def task_name(fn: Callable[..., object]) -> str:
    """``module:qualname``: how workers find a function, e.g. ``shop.jobs:send_email``."""
    module = fn.__module__
    # Run as a script (or run again so in a process pool's child): name it as
    # an import would.
    if module in ("__main__", "__mp_main__"):
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        module = spec.name if spec else "__main__"
    return f"{module}:{fn.__qualname__}"


class Queue:
    """A handle on one queue, for reading its state."""

    def __init__(self, app: App, name: str):
        self.app = app
        self.name = check_queue_name(name)

    def __repr__(self) -> str:
        return f"<Queue {self.name}>"

    def counts(self) -> dict[str, int]:
        """Jobs per state: queued, scheduled, active, completed, failed."""
        return self.app.backend.counts(self.name)

    def pause(self) -> None:
        """Workers stop taking jobs from this queue; running jobs finish."""
        self.app.backend.pause(self.name)

    def resume(self) -> bool:
        """Workers take jobs again (at once). False if it was not paused."""
        return self.app.backend.resume(self.name)

    def purge(self) -> int:
        """Delete every job of the queue, in every state (jobs running now
        finish, and their outcomes are discarded). Returns the keys deleted."""
        return self.app.backend.purge(self.name)

    @property
    def paused(self) -> bool:
        return self.app.backend.is_paused(self.name)

    def failed_jobs(self, limit: int = 100) -> list[Job[Any]]:
        """The dead-letter set, newest first."""
        return [Job(self.app, self.name, i) for i in self.app.backend.failed_ids(self.name, limit)]


class App:
    """A tarefa application: its tasks, its serializer and its Redis.

    ``url``: a Redis URL; default ``TAREFA_URL``, else the embedded server in
    ``./.tarefa/``. ``include``: modules a worker imports at start so that the
    tasks they define are registered. ``serializer``: ``"json"`` (default) or
    ``"pickle"`` (any Python object, but only for a Redis that no one else can
    write to). ``on_success(job, result)``, ``on_failure(job, error)``,
    ``on_retry(job, error, delay)``: hooks for every task, run in the worker.
    ``testing``: run every job inline when it is enqueued, in memory, with no
    Redis and no worker (see ``App.testing()``). ``max_payload_bytes``: the
    largest a job's serialized arguments may be (1 MiB; None: no limit), checked
    at the caller. ``max_result_bytes``: the largest a job's serialized
    result may be (1 MiB; None: no limit); over it the attempt fails with
    ``ResultTooLarge``, is not retried, and nothing of the result is stored.
    ``durable``: every enqueue returns only once Redis has
    fsynced it (WAITAOF, Redis 7.2+; a task or a call may say otherwise).
    ``durable_replicas``: how many replicas must also have a durable enqueue
    (WAIT) before it returns; by default 1 with a ``redis+sentinel://`` or
    ``redis+cluster://`` URL, else 0.
    ``redis_timeout``: seconds to connect to Redis and to wait for each reply
    (3), beyond which a call is retried, then fails (blocking waits such as
    ``job.result()`` wait as long as they are asked).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        serializer: str = "json",
        include: Iterable[str] = (),
        on_success: Callable[..., Any] | None = None,
        on_failure: Callable[..., Any] | None = None,
        on_retry: Callable[..., Any] | None = None,
        testing: bool = False,
        max_payload_bytes: int | None = MAX_PAYLOAD_BYTES,
        max_result_bytes: int | None = MAX_RESULT_BYTES,
        durable: bool = False,
        durable_replicas: int | None = None,
        redis_timeout: float = TIMEOUT,
    ):
        if url is not None:
            if not isinstance(url, str):
                raise TypeError(f"url must be a str, not {type(url).__name__}")
            check_url(url)
        self._url = url
        self.max_payload_bytes = check_payload_limit(max_payload_bytes)
        self.max_result_bytes = check_payload_limit(max_result_bytes, "max_result_bytes")
        if not isinstance(durable, bool):
            raise TypeError(f"durable must be True or False, not {durable!r}")
        self.durable = durable
        if durable_replicas is not None and (
            not isinstance(durable_replicas, int)
            or isinstance(durable_replicas, bool)
            or durable_replicas < 0
        ):
            raise ValueError(
                f"durable_replicas must be an int >= 0 or None, not {durable_replicas!r}"
            )
        self.durable_replicas = durable_replicas
        self.redis_timeout = check_timeout(redis_timeout)
        self.serializer: Serializer = get_serializer(serializer)
        self.include = tuple(include)
        # Hooks for every task, after the task's own (see worker/hooks.py).
        self.on_success, self.on_failure, self.on_retry = on_success, on_failure, on_retry
        self.job_scopes: tuple[JobScope, ...] = ()  # around_each_job
        # What Task.enqueue_on_commit hands its enqueue to: a framework's
        # "run this once the transaction commits" (tarefa.contrib.django).
        self.on_commit: Callable[[Callable[[], object]], object] | None = None
        # Spans around enqueues and attempts (tarefa.contrib.otel.instrument).
        self.tracing: Tracing | None = None
        self.tasks: dict[str, Task[..., Any]] = {}
        self.queue_settings: dict[str, QueueSettings] = {}
        self._store: Store | None = None
        self._inline: Backend | None = _testing_backend[0](self) if testing else None

    @property
    def backend(self) -> Backend:
        """Where producers and job handles keep jobs: the Redis store, or in
        testing mode the jobs kept in memory (tarefa.testing)."""
        return self._inline if self._inline is not None else self.store

    @property
    def store(self) -> Store:
        """The Redis store: what workers, the dashboard and the operator's
        commands use. Not in testing mode, which has no Redis."""
        if self._inline is not None:
            raise AttributeError(
                "app.store is not available in testing mode: jobs run inline when they are "
                "enqueued, with no Redis and no worker"
            )
        if self._store is None:
            self._store = Store(
                self._url, timeout=self.redis_timeout, durable_replicas=self.durable_replicas
            )
        return self._store

    def close(self) -> None:
        if isinstance(self._store, Store):
            self._store.clients.close()

    async def aclose(self) -> None:
        """``close()`` from asyncio code, with this event loop's connections."""
        if isinstance(self._store, Store):
            await self._store.aclose()
        self.close()

    def around_each_job(self, scope: JobScope) -> None:
        """Run every job of this App inside ``scope()``, a context manager
        entered where the job runs (its thread, its process; the event loop
        for an async task) and left once it ends: what a framework needs
        around a job, such as fresh database connections or an app context.
        Scopes nest in the order they were added, the first outermost."""
        if not callable(scope):
            raise TypeError(f"scope must be a callable returning a context manager, not {scope!r}")
        self.job_scopes += (scope,)

    @contextmanager
    def testing(self) -> Iterator[App]:
        """Testing mode for the block: every job runs inline when it is
        enqueued (through the same argument check, serializer and outcome
        logic as in a worker), recorded in memory, with no Redis and no worker.
        Each block starts empty; the App's Redis is back after it. See
        ``tarefa.testing`` for what differs from a worker."""
        saved, self._inline = self._inline, _testing_backend[0](self)
        try:
            yield self
        finally:
            self._inline = saved

    # -- tasks ------------------------------------------------------------------

    @overload
    def task(self, fn: Callable[P, R], /) -> Task[P, R]: ...

    @overload
    def task(
        self, fn: None = None, /, *, name: str | None = None, **options: Any
    ) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    def task(
        self, fn: Callable[P, R] | None = None, /, *, name: str | None = None, **options: Any
    ) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
        """Register a function (sync or ``async def``) as a task.

        Options: ``queue`` ("default"), ``retries`` (3), ``timeout`` (seconds,
        none), ``backoff`` (1 s, doubling per attempt), ``backoff_max`` (1 h),
        ``result_ttl`` (how long a result is kept: 1 h; 0 drops it at once,
        None keeps it forever), ``pool`` (a sync task's: "thread" or "process";
        default: the worker's ``--pool``).
        """
        task_options = TaskOptions(**_task_options(options))

        def register(fn: Callable[P, R]) -> Task[P, R]:
            if not callable(fn):
                raise TypeError(f"@app.task needs a function, not {type(fn).__name__}")
            task = Task(self, fn, name or task_name(fn), task_options)
            if task_options.pool == "process" and task.is_async:
                raise ValueError(
                    f"{task.name} is async: it runs on the worker's event loop and cannot "
                    "use pool='process' (for sync functions only)"
                )
            if task_options.cron and task.signature is not None:
                try:
                    task.signature.bind()
                except TypeError:
                    raise TypeError(
                        f"cron task {task.name} is called with no arguments: "
                        "give its parameters defaults"
                    ) from None
            if task.name in self.tasks and self.tasks[task.name].fn is not fn:
                raise ValueError(f"two tasks are named {task.name!r}; give one a name=")
            self.tasks[task.name] = task
            return task

        return register(fn) if fn is not None else register

    def by_name(self, name: str, **options: Any) -> Task[..., Any]:
        """A handle to enqueue a task by its name without importing its code.
        The registered task when this App has it; else arguments are checked
        only by the worker that runs it."""
        if not isinstance(name, str) or ":" not in name:
            raise ValueError(f"a task name looks like 'package.module:function', not {name!r}")
        task = self.tasks.get(name)
        if task is None:
            task_opts = _task_options({"queue": options.pop("queue", "default")})
            task = Task(self, None, name, TaskOptions(**task_opts))
        return task.with_options(**options) if options else task

    def enqueue(self, name: str, *args: Any, **kwargs: Any) -> Job[Any]:
        """Enqueue a task by name, e.g. ``app.enqueue("shop.jobs:send_email", to)``."""
        return self.by_name(name).enqueue(*args, **kwargs)

    async def aenqueue(self, name: str, *args: Any, **kwargs: Any) -> Job[Any]:
        return await self.by_name(name).aenqueue(*args, **kwargs)

    def import_includes(self) -> None:
        for module in self.include:
            importlib.import_module(module)

    def task_queues(self) -> list[str]:
        """The queues this App's tasks name, in the order the tasks were
        declared (``include`` modules imported first), then ``default``, each
        once: what a worker given no queue serves."""
        self.import_includes()
        named = [t.options.queue for t in self.tasks.values() if t.fn is not None]
        return list(dict.fromkeys([*named, "default"]))

    # -- queues and jobs --------------------------------------------------------

    def queue(self, name: str) -> Queue:
        return Queue(self, name)

    def configure_queue(
        self,
        name: str,
        *,
        rate_limit: str | tuple[int, float] | None = None,
        key_rate_limit: str | tuple[int, float] | None = None,
        key_concurrency: int | None = None,
        keep_completed: int | None = None,
        keep_failed: int | None = KEEP_FAILED,
        failed_ttl: float | str | None = FAILED_TTL,
    ) -> None:
        """Limits that every worker running this code applies to a queue:
        ``rate_limit`` ("100/m": at most 100 jobs start in any minute),
        ``key_rate_limit`` (the same per key, see ``with_options(key=...)``),
        ``key_concurrency`` (at most N jobs of one key run at once),
        ``keep_completed`` (keep at most N completed jobs), ``keep_failed``
        (keep at most N failed jobs: 10,000) and ``failed_ttl`` (seconds, or
        "30d", a failed job is kept: 180 days); None: no such bound."""
        self.queue_settings[check_queue_name(name)] = QueueSettings.parse(
            rate_limit=rate_limit,
            key_rate_limit=key_rate_limit,
            key_concurrency=key_concurrency,
            keep_completed=keep_completed,
            keep_failed=keep_failed,
            failed_ttl=failed_ttl,
        )

    def settings(self, queue: str) -> QueueSettings:
        return self.queue_settings.get(queue, DEFAULT_SETTINGS)

    def queues(self) -> list[str]:
        """Every queue that has been used."""
        return self.backend.queues()

    def job(self, job_id: str, queue: str | None = None) -> Job[Any]:
        """A handle on an existing job. Without ``queue``, every queue is
        searched: AmbiguousJob if several hold the id (ids are unique per
        queue), JobNotFound if none does."""
        if queue is None:
            found = self.backend.find_queues(job_id)
            if len(found) > 1:
                raise AmbiguousJob(job_id, found)
            if not found:
                raise JobNotFound(f"no job {job_id!r} in any queue")
            queue = found[0]
        return Job(self, queue, job_id)


def _task_options(options: dict[str, Any]) -> dict[str, Any]:
    task_opts, call_opts = parse_call_options(options, schedule=True)
    if call_opts:
        raise TypeError(f"{', '.join(call_opts)} is set per call, with task.with_options(...)")
    return task_opts


if TYPE_CHECKING:  # tasks and job handles ask only this of their App: a type error if it misses
    _owns: type[Owner] = App
