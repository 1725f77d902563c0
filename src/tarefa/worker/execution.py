"""Running one leased job and deciding its outcome.

Nothing here speaks Redis, and nothing here may raise: bad input (an unknown
task name, a payload that does not decode, arguments that no longer fit the
function) and every error of the job itself end as an outcome, so a job can
never kill the worker or be lost.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import replace
from typing import Any

import orjson

from ..context import JobContext, _current
from ..errors import ResultTooLarge, Retry
from ..job_scopes import within
from ..options import TaskOptions
from ..records import FOREVER, Leased, Outcome, OutcomeKind
from ..serializer import decode_call, dump_error
from ..task import Task
from .hooks import run_hooks
from .process_child import ChildError, ChildRetry, Encoded
from .process_pool import ProcessPool
from .registry import TaskRegistry

log = logging.getLogger("tarefa.worker")


def failed(error_type: str, message: str, tb: str = "") -> Outcome:
    """The outcome of an attempt that fails for good with this error."""
    return Outcome(OutcomeKind.FAILED, dump_error(error_type, message, tb), 0)


def _options(task_options: TaskOptions, overrides: bytes) -> TaskOptions:
    if not overrides:
        return task_options
    return replace(task_options, **orjson.loads(overrides))


async def execute(
    app: TaskRegistry,
    queue: str,
    job: Leased,
    executor: Executor,
    *,
    cancel: threading.Event | None = None,
    thread_outlived: Callable[[asyncio.Future[Any]], None] | None = None,
    processes: ProcessPool | None = None,
    hook_executor: Executor | None = None,
) -> Outcome:
    """Run ``job`` to its outcome. Only the worker's own cancellation (shutdown,
    a lost lease) propagates; ``cancel`` is the event ``current_job().cancelled``
    reads; ``thread_outlived(future)`` is told of a sync job whose thread runs on
    after its timeout; ``processes`` runs the sync jobs it says it runs; sync
    hooks run in ``hook_executor`` (else in ``executor``). With the App's
    tracer, all of it is the attempt's span."""
    run = _attempt(app, queue, job, executor, cancel, thread_outlived, processes, hook_executor)
    if app.tracing is None:
        return await run
    with app.tracing.processing(queue, job.task, job.id, job.attempts, job.trace) as attempt:
        outcome = await run
        attempt.ended(outcome)
        return outcome


async def _attempt(
    app: TaskRegistry,
    queue: str,
    job: Leased,
    executor: Executor,
    cancel: threading.Event | None,
    thread_outlived: Callable[[asyncio.Future[Any]], None] | None,
    processes: ProcessPool | None,
    hook_executor: Executor | None,
) -> Outcome:
    prepared = _prepare(app, job)
    if isinstance(prepared, Outcome):
        return prepared  # it cannot run: it fails at once, and runs no hooks
    task, fn, args, kwargs, options = prepared
    context = JobContext(
        job.id, queue, task.name, job.attempts, store=app.backend, token=job.token,
        _cancel=cancel or threading.Event(),
    )  # fmt: skip
    token = _current.set(context)
    value: Any  # what the hooks get: the result, or the exception
    try:
        if processes is not None and processes.runs(task):
            if job.parent_results is not None:  # the child decodes the payload itself
                job = replace(job, payload=app.serializer.dumps((args, kwargs)))
            if app.tracing is not None:  # the job's process goes on with this span
                job = replace(job, trace=app.tracing.current())
            result = await processes.run(queue, job, task, options.timeout)
        else:
            fn = within(app.job_scopes, fn, task.is_async)
            result = await _call(task, fn, args, kwargs, options.timeout, executor, thread_outlived)
    except Retry as exc:
        outcome, value = _retry_or_fail(job, options, exc, exc.delay), exc
    except BaseException as exc:  # whatever a job raises becomes its outcome...
        current = asyncio.current_task()
        if isinstance(exc, asyncio.CancelledError) and current and current.cancelling():
            raise  # ...but the worker cancelling it (shutdown) is not the job's doing
        outcome, value = _retry_or_fail(job, options, exc, None), exc
    else:
        outcome, value = _completed(app, task, options, result)
    finally:
        _current.reset(token)
        if context._outbox:  # a progress report may still be on its way
            await context.flush()
    if not context.cancelled:  # cancelled or taken over: the outcome will be discarded
        await run_hooks(app, task, context, outcome, value, hook_executor or executor)
    return outcome


Prepared = tuple[Task[..., Any], Callable[..., Any], list[Any], dict[str, Any], TaskOptions]


def _prepare(app: TaskRegistry, job: Leased) -> Prepared | Outcome:
    """The job's task, arguments and options; or the outcome of a job that
    cannot run: an unknown task, a payload that does not decode, arguments that
    do not fit the function."""
    task = app.tasks.get(job.task)
    if task is None or task.fn is None or task.signature is None:
        return failed(
            "UnknownTask",
            f"no task named {job.task!r} in this worker's app; import its module "
            "from the app's module or list it in App(include=[...])",
        )
    try:
        args, kwargs = decode_call(app.serializer, job.payload)
        if job.parent_results is not None:  # a group's callback: the results come first
            results = [app.serializer.loads(r) if r else None for r in job.parent_results]
            args = [results, *args]
        options = _options(task.options, job.options)
    except Exception as exc:
        return failed("PayloadError", f"cannot decode the job's payload: {exc}")
    try:
        task.signature.bind(*args, **kwargs)
    except TypeError as exc:
        return failed("ArgumentError", f"{task.name}: {exc}")
    return task, task.fn, args, kwargs, options


def _completed(
    app: TaskRegistry, task: Task[..., Any], options: TaskOptions, result: Any
) -> tuple[Outcome, Any]:
    """The outcome of a job that returned ``result``, and the value its hooks get."""
    if type(result) is Encoded:  # serialized in its process already
        value, result = result.data, result
    else:
        try:
            value = app.serializer.dumps(result)
        except TypeError as exc:
            # The job ran and its effects happened: do not run it again.
            error = f"{task.name} returned a value that cannot be stored: {exc}"
            return failed("ResultError", error), result
    limit = app.max_result_bytes
    if limit is not None and len(value) > limit:
        # Nor again when it returned too much: it would return as much again.
        too_large = ResultTooLarge(task.name, len(value), limit)
        return failed("ResultTooLarge", str(too_large)), too_large
    if type(result) is Encoded:
        result = result.decode(app.serializer)
    return _kept(options, value), result


def _kept(options: TaskOptions, value: bytes) -> Outcome:
    ttl = options.result_ttl
    return Outcome(OutcomeKind.COMPLETED, value, FOREVER if ttl is None else int(ttl * 1000))


async def _call(
    task: Task[..., Any],
    fn: Callable[..., Any],
    args: list[Any],
    kwargs: dict[str, Any],
    timeout: float | None,
    executor: Executor,
    thread_outlived: Callable[[asyncio.Future[Any]], None] | None,
) -> Any:
    if task.is_async:
        deadline = asyncio.timeout(timeout)
        began = time.monotonic()
        try:
            async with deadline:
                result = await fn(*args, **kwargs)
        except TimeoutError:
            if deadline.expired():
                raise TimeoutError(f"{task.name} did not finish within {timeout} s") from None
            raise
        # Blocking code holds the loop, so the deadline cannot fire until it
        # lets go: a job that ran past its timeout that way still timed out.
        took = time.monotonic() - began
        if timeout is not None and took > timeout:
            raise TimeoutError(
                f"{task.name} did not finish within {timeout} s (it took {took:.1f} s, "
                "holding the event loop: an async task calling blocking code)"
            )
        return result
    # A sync function runs in the thread pool, with this job's context.
    loop = asyncio.get_running_loop()
    call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
    future = loop.run_in_executor(executor, call)
    if timeout is None:
        return await future
    done, _ = await asyncio.wait({future}, timeout=timeout)
    if not done:
        # A thread cannot be stopped: it goes on until it returns, holding its
        # pool thread (and its slot), but its outcome is no longer awaited.
        log.warning("%s timed out after %s s; its thread keeps running", task.name, timeout)
        if thread_outlived is not None:
            thread_outlived(future)
        raise TimeoutError(f"{task.name} did not finish within {timeout} s")
    return future.result()


def job_timeout(app: TaskRegistry, job: Leased) -> float | None:
    """The job's timeout (its task's, or its own per-call one), or None."""
    task = app.tasks.get(job.task)
    if task is None:
        return None
    try:
        return _options(task.options, job.options).timeout
    except Exception:  # options that do not decode: the job fails before it runs
        return None


def timed_out(app: TaskRegistry, job: Leased, message: str) -> Outcome:
    """The outcome of an attempt that ran past its timeout: retried per its
    task's retries, else failed."""
    task = app.tasks[job.task]
    return _retry_or_fail(job, _options(task.options, job.options), TimeoutError(message), None)


def _retry_or_fail(
    job: Leased, options: TaskOptions, exc: BaseException, delay: float | None
) -> Outcome:
    if isinstance(exc, ChildError | ChildRetry):  # raised in a child process: as it was there
        error = dump_error(exc.error_type, exc.message, exc.traceback)
        if exc.final:
            return Outcome(OutcomeKind.FAILED, error, 0, allowed=options.retries + 1 + job.stalls)
    else:
        error = dump_error(type(exc).__name__, str(exc), "".join(traceback.format_exception(exc)))
    raised = None if isinstance(exc, ChildError | ChildRetry) else exc
    allowed = options.retries + 1 + job.stalls  # a stalled attempt did not fail: not counted
    if job.attempts < allowed:
        seconds = delay if delay is not None else options.retry_delay(job.attempts)
        return Outcome(OutcomeKind.RETRY, error, int(seconds * 1000), raised, allowed)
    return Outcome(OutcomeKind.FAILED, error, 0, raised, allowed)
