"""Serializers: strict JSON by default, pickle by choice."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from tarefa.serializer import (
    JsonSerializer,
    PickleSerializer,
    dump_error,
    get_serializer,
    load_error,
)


@dataclasses.dataclass
class Point:
    x: int


def test_json_round_trips_json_types():
    s = JsonSerializer()
    value = [["a", 1, 2.5, True, None, {"k": [1]}], {"n": 1}]
    assert s.loads(s.dumps(value)) == value


class Name(str):
    pass


@pytest.mark.parametrize("value", [object(), Point(1), {1, 2}, b"bytes", 2**70, Name("x")])
def test_json_refuses_what_would_not_come_back_the_same(value):
    with pytest.raises(TypeError):
        JsonSerializer().dumps([value])


def test_json_turns_a_uuid_into_its_string():
    value = uuid.uuid4()
    s = JsonSerializer()
    assert s.loads(s.dumps([value])) == [str(value)]


def test_json_refuses_to_load_a_pickle():
    with pytest.raises(ValueError, match="pickled"):
        JsonSerializer().loads(PickleSerializer().dumps([1]))


def test_pickle_round_trips_objects_and_reads_json():
    s = PickleSerializer()
    assert s.loads(s.dumps([Point(3)])) == [Point(3)]
    assert s.loads(b"[[1],{}]") == [[1], {}]
    with pytest.raises(TypeError, match="cannot pickle"):
        s.dumps(lambda: 1)


def test_errors_are_stored_as_json_whatever_the_serializer():
    assert load_error(dump_error("ValueError", "bad", "tb")) == {
        "type": "ValueError",
        "message": "bad",
        "traceback": "tb",
    }
    assert load_error(b"not json")["message"] == "not json"
    assert get_serializer("json").name == "json"
