"""Finding a queue's cancelled jobs. They are in no index (cancel.lua and
resolve.lua only mark the job's hash and let it expire, in this release and
in 0.1.0), so they are found by scanning the queue's job keys: a bounded
scan, newest first, that reads every record either release wrote."""

from __future__ import annotations

from typing import cast

from redis import Redis

from .keys import queue_keys
from .replies import decode_list

SCAN_KEYS = 10_000  # job records a listing looks through, at most
SCAN_COUNT = 1_000  # the COUNT hint of each SCAN call
SCAN_CALLS = 200  # SCAN calls at most: a large keyspace of other keys is not walked
BATCH = 500  # job records read per round trip


def cancelled_ids(client: Redis, queue: str) -> tuple[list[str], bool]:
    """The ids of the queue's cancelled jobs, most recently cancelled first,
    among the first SCAN_KEYS job records that at most SCAN_CALLS SCAN calls
    find; and whether those were all of the queue's job records (False: the
    list may miss some)."""
    prefix = queue_keys(queue).job_prefix
    pattern = prefix + "*"  # (a queue's name holds no glob character: keys.py)
    ids: list[str] = []
    cursor, calls = None, 0
    while cursor != 0 and len(ids) < SCAN_KEYS and calls < SCAN_CALLS:
        cursor, keys = client.scan(cursor or 0, match=pattern, count=SCAN_COUNT)
        calls += 1
        ids += [key[len(prefix) :] for key in decode_list(cast(list[bytes], keys))]
    complete = cursor == 0 and len(ids) <= SCAN_KEYS
    ids = ids[:SCAN_KEYS]
    found: list[tuple[int, str]] = []
    for start in range(0, len(ids), BATCH):
        found += _cancelled(client, ids[start : start + BATCH], prefix)
    found.sort(reverse=True)
    return [job_id for _, job_id in found], complete


def _cancelled(client: Redis, ids: list[str], prefix: str) -> list[tuple[int, str]]:
    """(finished_at, id) of those of ``ids`` whose job is cancelled."""
    if not ids:
        return []
    pipe = client.pipeline(transaction=False)
    for job_id in ids:
        pipe.hmget(prefix + job_id, "state", "finished_at")
    return [
        (int(finished or 0), job_id)
        for job_id, (state, finished) in zip(ids, pipe.execute(), strict=True)
        if state == b"cancelled"
    ]
