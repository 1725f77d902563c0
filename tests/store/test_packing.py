"""Commands packed by tarefa (store/packing.py) are the very bytes redis-py
would send, and refuse what redis-py refuses."""

from __future__ import annotations

import pytest
import redis

from tarefa.store.packing import Head, pack


def redis_py_packed(*args) -> bytes:
    connection = redis.Connection()  # packs without connecting
    return b"".join(connection.pack_command(*args))


HEAD = ("EVALSHA", "a" * 40, 2, "tarefa:{q}:ready", "tarefa:{q}:job:")
ARGUMENTS = [
    [],
    ["id", 0, 1500, "", "throttle", 60000, "t:key", 0, 1],
    ["task", "shop.jobs:send", "payload", b'[["a\\u00e9",1],{}]', b"\x80\x05binary\r\n"],
    ["café ☕", -7, 2**70, 1.5, b""],
]


@pytest.mark.parametrize("args", ARGUMENTS)
def test_a_head_and_its_arguments_pack_as_redis_py_packs_them(args):
    assert Head(HEAD).pack(args) == redis_py_packed(*HEAD, *args)


def test_a_whole_command_packs_as_redis_py_packs_it():
    assert pack("SADD", "tarefa:queues", "émails") == redis_py_packed(
        "SADD", "tarefa:queues", "émails"
    )


@pytest.mark.parametrize("bad", [None, True, object()])
def test_a_value_redis_cannot_take_is_refused(bad):
    with pytest.raises(TypeError):
        Head(HEAD).pack(["id", bad])
