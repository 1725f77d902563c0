"""A producer the upgrade tests run under either release:
``python -m tests.upgrade.produce WHAT ARGS...`` enqueues and prints JSON.

- ``mix PREFIX``: one job of each kind ({label: [id, expected result]}): now,
  delayed, with a priority, with a job id, in a batch, by name, a chain and a
  group's callback.
- ``work COUNT MS``, ``flaky COUNT``: that many jobs ([ids]).
- ``hold TAG``: one job that runs until released or cancelled (its id).
"""

from __future__ import annotations

import json
import sys

from tarefa import Group

from .tasks import app, echo, flaky, hold, merge, work


def mix(prefix: str) -> dict[str, list]:
    jobs = {
        "now": (echo.enqueue(f"{prefix}now"), f"{prefix}now"),
        "delayed": (echo.with_options(delay=1).enqueue(f"{prefix}late"), f"{prefix}late"),
        "priority": (echo.with_options(priority=3).enqueue(f"{prefix}p3"), f"{prefix}p3"),
        "job_id": (echo.with_options(job_id=f"{prefix}fixed").enqueue("id"), "id"),
        "by_name": (app.enqueue("tests.upgrade.tasks:echo", f"{prefix}name"), f"{prefix}name"),
    }
    first, second = echo.enqueue_many([(f"{prefix}b1",), (f"{prefix}b2",)])
    jobs["batch_1"], jobs["batch_2"] = (first, f"{prefix}b1"), (second, f"{prefix}b2")
    jobs["chain"] = (jobs["now"][0].then(echo, f"{prefix}then"), f"{prefix}then")
    callback = Group([first, second]).then(merge, f"{prefix}g")
    jobs["group"] = (callback, f"{prefix}b1+{prefix}b2>{prefix}g")
    return {label: [job.id, expected] for label, (job, expected) in jobs.items()}


def main(what: str, *args: str) -> object:
    if what == "mix":
        return mix(args[0])
    if what == "work":
        return [job.id for job in work.enqueue_many([(float(args[1]),)] * int(args[0]))]
    if what == "flaky":
        return [job.id for job in flaky.enqueue_many([(str(i),) for i in range(int(args[0]))])]
    if what == "hold":
        return hold.enqueue(args[0]).id
    raise SystemExit(f"unknown: {what}")


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:])))
    app.close()
