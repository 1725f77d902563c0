"""Whether a call's arguments fit a function's signature, checked at enqueue.

``inspect.Signature.bind`` costs a few microseconds a call. Most tasks have
plain signatures (parameters that may be passed by position, no ``*args``,
``**kwargs`` or keyword-only ones), and for those the answer comes
from the parameters' names alone, worked out once per task: a call fits when
it passes no more positional arguments than there are parameters, names only
parameters it did not pass by position (and not positional-only ones), and
leaves out only parameters with a default. Any other signature, and any call
that does not fit (for the error's message), goes to ``Signature.bind``.
"""

from __future__ import annotations

import inspect
from typing import Any

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


class CallCheck:
    """Checks calls against one signature; ``leading``: arguments the worker
    passes before the caller's own (a group callback's results)."""

    __slots__ = ("_signature", "_leading", "_nameable", "_required")

    def __init__(self, signature: inspect.Signature, leading: int = 0):
        self._signature = signature
        self._leading = leading
        params = list(signature.parameters.values())
        # For n arguments passed by position (0 to all): the parameters after
        # them, which the call may name, and those of them with no default,
        # which it must name. Empty for a signature that is not plain.
        self._nameable: list[frozenset[str]] = []
        self._required: list[frozenset[str]] = []
        if all(p.kind in _POSITIONAL for p in params):
            for n in range(len(params) + 1):
                rest = params[n:]
                named = (p for p in rest if p.kind is not inspect.Parameter.POSITIONAL_ONLY)
                self._nameable.append(frozenset(p.name for p in named))
                # (a positional-only one left out is never named: bind says so)
                self._required.append(frozenset(p.name for p in rest if p.default is p.empty))

    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Raise TypeError (Signature.bind's) when the call does not fit."""
        positional = len(args) + self._leading
        if positional < len(self._nameable):
            keys = kwargs.keys()
            if keys <= self._nameable[positional] and keys >= self._required[positional]:
                return
        self._signature.bind(*(None,) * self._leading, *args, **kwargs)
