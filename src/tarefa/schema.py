"""A task's arguments as a JSON Schema, derived from its function's signature,
so that services in other languages can enqueue over HTTP safely: the REST
API publishes it (in its OpenAPI document too) and validates against it.

Over HTTP a job's arguments are an object of named arguments. A task whose
function takes positional-only parameters or ``*args`` cannot be called that
way and has no schema.
"""

from __future__ import annotations

import inspect
import typing
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, create_model

if TYPE_CHECKING:
    from .task import Task


class ArgumentsError(ValueError):
    """Arguments that do not match a task's schema; ``errors`` says where."""

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.errors = errors or []


class NoSchema(TypeError):
    """The task's function cannot be called with named arguments only."""


def _annotation(hints: dict[str, Any], name: str) -> Any:
    """The parameter's type if pydantic can describe it, else any JSON value."""
    hint = hints.get(name, Any)
    try:
        TypeAdapter(hint).json_schema()
    except Exception:  # a class pydantic cannot describe: accept any value
        return Any
    return hint


@cache
def arguments_model(task: Task[..., Any]) -> type[BaseModel]:
    """A pydantic model of the task's named arguments (cached per task)."""
    if task.fn is None or task.signature is None:
        raise NoSchema(f"task {task.name} is known by name only: its signature is not here")
    try:
        hints = typing.get_type_hints(task.fn)
    except Exception:  # unresolvable annotations: fall back to any value
        hints = {}
    fields: dict[str, Any] = {}
    extra: Literal["allow", "forbid"] = "forbid"
    for name, param in task.signature.parameters.items():
        if param.kind in (param.POSITIONAL_ONLY, param.VAR_POSITIONAL):
            raise NoSchema(f"task {task.name} takes positional-only arguments ({name})")
        if param.kind is param.VAR_KEYWORD:
            extra = "allow"
            continue
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[name] = (_annotation(hints, name), default)
    config = ConfigDict(extra=extra, strict=True, title=task.name)
    return create_model(task.name.replace(":", "."), __config__=config, **fields)


def task_schema(task: Task[..., Any]) -> dict[str, Any] | None:
    """The JSON Schema of the task's named arguments; None if it has none."""
    try:
        return arguments_model(task).model_json_schema()
    except NoSchema:
        return None


def check_arguments(task: Task[..., Any], arguments: object) -> dict[str, Any]:
    """``arguments`` (decoded JSON) checked against the task's schema; returns
    them unchanged (the worker passes JSON values as they came)."""
    if not isinstance(arguments, dict):
        raise ArgumentsError("arguments must be a JSON object of named arguments")
    try:
        arguments_model(task).model_validate(arguments)
    except NoSchema as exc:
        raise ArgumentsError(str(exc)) from None
    except ValidationError as exc:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        raise ArgumentsError(f"arguments do not match task {task.name}", errors) from None
    return arguments
