"""A task's arguments are checked at enqueue by CallCheck, whose quick answer
for plain signatures must be Signature.bind's, every time."""

from __future__ import annotations

import inspect

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tarefa.call_check import CallCheck

P = inspect.Parameter
KINDS = [
    P.POSITIONAL_ONLY,
    P.POSITIONAL_OR_KEYWORD,
    P.VAR_POSITIONAL,
    P.KEYWORD_ONLY,
    P.VAR_KEYWORD,
]
NAMES = ["a", "b", "c", "d", "e"]


@st.composite
def signatures(draw) -> inspect.Signature:
    """Valid signatures over NAMES: kinds in order, defaults only after defaults."""
    kinds = sorted(draw(st.lists(st.sampled_from(KINDS), max_size=5)), key=KINDS.index)
    kinds = [k for n, k in enumerate(kinds) if k not in (P.VAR_POSITIONAL, P.VAR_KEYWORD)
             or k not in kinds[:n]]  # fmt: skip
    params, defaulted = [], False
    for name, kind in zip(NAMES, kinds, strict=False):
        default = P.empty
        if kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD):
            defaulted = defaulted or draw(st.booleans())
            default = 0 if defaulted else P.empty
        elif kind is P.KEYWORD_ONLY and draw(st.booleans()):
            default = 0
        params.append(P(name, kind, default=default))
    return inspect.Signature(params)


def binds(signature: inspect.Signature, leading: int, args: tuple, kwargs: dict) -> bool:
    try:
        signature.bind(*(None,) * leading, *args, **kwargs)
        return True
    except TypeError:
        return False


@settings(max_examples=400)
@example(inspect.Signature([P("a", P.POSITIONAL_ONLY, default=0)]), 0, 0, ["a"])
@given(
    signatures(),
    st.integers(0, 1),
    st.integers(0, 6),
    st.lists(st.sampled_from([*NAMES, "z"]), unique=True, max_size=4),
)
def test_a_call_passes_exactly_when_signature_bind_takes_it(signature, leading, count, names):
    check = CallCheck(signature, leading)
    args, kwargs = tuple(range(count)), dict.fromkeys(names, 1)
    if binds(signature, leading, args, kwargs):
        check(args, kwargs)
    else:
        with pytest.raises(TypeError):
            check(args, kwargs)


def test_a_call_that_does_not_fit_gets_signature_binds_message():
    def send(to: str, subject: str, body: str = "") -> None: ...

    check = CallCheck(inspect.signature(send))
    with pytest.raises(TypeError, match="missing a required argument: 'subject'"):
        check(("a@b.c",), {"body": "hi"})
    with pytest.raises(TypeError, match="multiple values for argument 'to'"):
        check(("a@b.c", "Hi"), {"to": "d@e.f"})
    with pytest.raises(TypeError, match="unexpected keyword argument 'cc'"):
        check(("a@b.c", "Hi"), {"cc": "d@e.f"})
    with pytest.raises(TypeError, match="too many positional arguments"):
        check(("a@b.c", "Hi", "body", "extra"), {})
    check(("a@b.c",), {"subject": "Hi"})
