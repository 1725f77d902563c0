"""How arguments and results become bytes and back.

JSON (orjson) by default, and strict: only str, int, float, bool, None, lists,
tuples (which come back as lists) and dicts with str keys; a UUID is sent as its
str. A datetime, a dataclass or a str subclass would silently arrive as a plain
str or dict, so they are refused at the caller rather than surprise a worker.
Pickle accepts any Python object but runs code while loading, so a Redis
writable by others could run code in your workers: it is off unless the App
opts in with ``serializer="pickle"``.
"""

from __future__ import annotations

import pickle
from typing import Any, Protocol

import orjson

_STRICT = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)
_PICKLE_MAGIC = b"\x80"


class Serializer(Protocol):
    name: str

    def dumps(self, obj: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


def _refuse(obj: Any) -> Any:
    raise TypeError(
        f"{type(obj).__name__} is not JSON-serializable; pass JSON types "
        "(str, int, float, bool, None, list, dict with str keys) "
        "or create the App with serializer='pickle'"
    )


class JsonSerializer:
    name = "json"

    def dumps(self, obj: Any) -> bytes:
        try:
            return orjson.dumps(obj, default=_refuse, option=_STRICT)
        except orjson.JSONEncodeError as exc:
            raise TypeError(str(exc.__cause__ or exc)) from None

    def loads(self, data: bytes) -> Any:
        if data[:1] == _PICKLE_MAGIC:
            raise ValueError("payload is pickled but this App uses serializer='json'")
        return orjson.loads(data)


class PickleSerializer:
    name = "pickle"

    def dumps(self, obj: Any) -> bytes:
        try:
            return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise TypeError(f"cannot pickle {obj!r}: {exc}") from None

    def loads(self, data: bytes) -> Any:
        if data[:1] != _PICKLE_MAGIC:
            return orjson.loads(data)  # enqueued as JSON (e.g. over HTTP): still fine
        return pickle.loads(data)


def get_serializer(name: str) -> Serializer:
    if name == "json":
        return JsonSerializer()
    if name == "pickle":
        return PickleSerializer()
    raise ValueError(f"unknown serializer {name!r}: use 'json' or 'pickle'")


def dump_error(error_type: str, message: str, traceback: str = "") -> bytes:
    """An error as stored with a failed job (always JSON, whatever the serializer)."""
    return orjson.dumps({"type": error_type, "message": message, "traceback": traceback})


def load_error(data: bytes | None) -> dict[str, str]:
    if not data:
        return {"type": "Error", "message": "", "traceback": ""}
    try:
        # Written by dump_error, or by a Lua script (type and message): all str.
        error: dict[str, str] = orjson.loads(data)
        return error
    except orjson.JSONDecodeError:
        return {"type": "Error", "message": data.decode(errors="replace"), "traceback": ""}


def decode_call(serializer: Serializer, payload: bytes) -> tuple[list[Any], dict[str, Any]]:
    """A job's stored ``[args, kwargs]``; ValueError if it is not that."""
    call = serializer.loads(payload)
    if (
        not isinstance(call, list | tuple)
        or len(call) != 2
        or not isinstance(call[0], list | tuple)
        or not isinstance(call[1], dict)
    ):
        raise ValueError("payload must be [args, kwargs]")
    return list(call[0]), call[1]
