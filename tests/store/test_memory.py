"""Redis's maxmemory-policy, as the store reads it: from CONFIG GET, else from
INFO memory, else unknown (ACLs and managed services refuse either)."""

from __future__ import annotations

import asyncio

import pytest

from tarefa.store import Store
from tarefa.store.acl import acl_rule

ADMIN = "admin-Pa55"
PASSWORD = "tarefa-Pa55"


@pytest.fixture
def server(private_redis):
    return private_redis(aof=False, password=ADMIN)


def memory(url: str):
    store = Store(url)
    try:
        found = store.memory()
        seen = asyncio.run(store.amemory())  # the worker's call reads the same
        assert (seen.policy, seen.maxmemory, seen.warning) == (
            found.policy,
            found.maxmemory,
            found.warning,
        )
        return found
    finally:
        store.clients.close()


def test_noeviction_is_what_tarefa_needs(server):
    server.client().config_set("maxmemory-policy", "noeviction")
    found = memory(server.url)
    assert found.policy == "noeviction" and found.warning is None and found.unknown is None
    assert found.maxmemory == 0 and found.used > 0


@pytest.mark.parametrize("policy", ["allkeys-lru", "allkeys-random", "allkeys-lfu"])
def test_a_policy_that_evicts_any_key_is_a_warning_that_jobs_can_vanish(server, policy):
    client = server.client()
    client.config_set("maxmemory-policy", policy)
    client.config_set("maxmemory", 64 << 20)
    found = memory(server.url)
    assert (found.policy, found.maxmemory) == (policy, 64 << 20)
    assert f"maxmemory-policy is {policy}: when its memory is full it deletes any key, " \
        "jobs among them, queued or running" in found.warning  # fmt: skip
    assert "tarefa needs maxmemory-policy noeviction" in found.warning


def test_a_volatile_policy_warns_of_the_keys_that_expire_and_an_unset_limit(server):
    server.client().config_set("maxmemory-policy", "volatile-lru")
    found = memory(server.url)
    assert "maxmemory-policy is volatile-lru (maxmemory is 0 now: no limit, so nothing is " \
        "evicted yet)" in found.warning  # fmt: skip
    assert "completed jobs' results" in found.warning


def test_without_config_the_policy_comes_from_info(server):
    server.client().config_set("maxmemory-policy", "allkeys-lru")
    rule = acl_rule("tarefa", PASSWORD) + " +info"  # tarefa's ACL has neither CONFIG nor INFO
    server.client().execute_command("ACL", "SETUSER", *rule.split())
    found = memory(server.url_for("tarefa", PASSWORD))
    assert found.policy == "allkeys-lru" and "deletes any key" in found.warning


def test_without_config_and_info_the_policy_is_unknown_and_said_so(server):
    server.client().execute_command("ACL", "SETUSER", *acl_rule("tarefa", PASSWORD).split())
    found = memory(server.url_for("tarefa", PASSWORD))
    assert (found.policy, found.maxmemory, found.used, found.warning) == (None, None, None, None)
    assert "would not tell its maxmemory-policy" in found.unknown
