"""The only package that speaks Redis: key names, Lua scripts, connections,
and the embedded default server. The rest of tarefa imports what it needs
from here, never from the modules inside."""

from .browse import CLEANABLE_STATES, LISTED_STATES
from .connection import REDIS_ERRORS, REFUSED, TIMEOUT, check_url, describe_error, redacted
from .embedded import Embedded, EmbeddedError
from .job_hash import stored_job
from .keys import check_queue_name, job_ref, split_ref
from .memory import RedisMemory
from .store import Store
from .tokens import token_base

__all__ = [
    "CLEANABLE_STATES",
    "LISTED_STATES",
    "REDIS_ERRORS",
    "REFUSED",
    "TIMEOUT",
    "Embedded",
    "EmbeddedError",
    "RedisMemory",
    "Store",
    "check_queue_name",
    "check_url",
    "describe_error",
    "job_ref",
    "redacted",
    "split_ref",
    "stored_job",
    "token_base",
]
