"""Rich tables the command line prints, from the JSON-ready values of
``manage.py`` (the same the REST API answers)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

STATES = ("queued", "waiting", "scheduled", "active", "completed", "failed")


def queues_table(queues: list[dict[str, Any]]) -> Table:
    table = Table(title="queues")
    table.add_column("queue")
    for state in STATES:
        table.add_column(state, justify="right")
    table.add_column("oldest ready", justify="right")
    table.add_column("ever completed / failed", justify="right")
    for q in queues:
        age = q["oldest_ready_age"]
        name = q["name"] + (" (paused)" if q["paused"] else "")
        oldest = "" if age is None else f"{age:.1f} s"
        ever = f"{q['totals']['completed']} / {q['totals']['failed']}"
        if q["totals"].get("lost"):  # gone from Redis before they ended: evicted
            ever += f" ({q['totals']['lost']} lost)"
        table.add_row(name, *(str(q["counts"][s]) for s in STATES), oldest, ever)
    return table


def memory_line(memory: dict[str, Any]) -> str:
    """``maxmemory-policy noeviction, 1.2 MiB used of 64 MiB``."""
    from .worker.memory import format_size

    policy = f"maxmemory-policy {memory['policy'] or 'unknown: Redis would not say'}"
    used, limit = memory["used"], memory["maxmemory"]
    if used is None:
        return policy
    of = f" of {format_size(limit)}" if limit else ", no maxmemory"
    return f"{policy}, {format_size(used)} used{of}"


def workers_table(workers: list[dict[str, Any]]) -> Table:
    table = Table(title="workers")
    for column in ("worker", "host", "pid", "queues", "running", "concurrency", "up", "last beat"):
        table.add_column(column)
    for w in workers:
        table.add_row(w["id"], w["host"], str(w["pid"]), ",".join(w["queues"]), str(w["running"]),
                      str(w["concurrency"]), f"{w['uptime']:.0f} s",
                      f"{w['last_beat_ago']:.0f} s ago")  # fmt: skip
    return table


def jobs_table(page: dict[str, Any]) -> Table:
    shown = len(page["jobs"])
    first = page["offset"] + 1 if shown else 0
    last = page["offset"] + shown
    table = Table(title=f"{page['queue']}: {page['state']} jobs {first}-{last} of {page['total']}")
    for column in ("id", "task", "attempts", "enqueued", "finished", "error"):
        table.add_column(column)
    for j in page["jobs"]:
        error = f"{j['error']['type']}: {j['error']['message']}" if j["error"] else ""
        table.add_row(j["id"], j["task"], str(j["attempts"]), _time(j["enqueued_at"]),
                      _time(j["finished_at"]), error)  # fmt: skip
    return table


def job_table(job: dict[str, Any]) -> Table:
    table = Table(title=f"job {job['id']}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for name in ("queue", "task", "state", "attempts", "stalls", "key", "priority", "worker",
                 "enqueued_at", "started_at", "finished_at", "args", "kwargs", "options",
                 "parents", "progress", "result"):  # fmt: skip
        value = job.get(name)
        if value not in (None, [], {}):
            table.add_row(name, str(value))
    if job.get("error"):
        error = job["error"]
        table.add_row("error", f"{error.get('type')}: {error.get('message')}")
        if error.get("traceback"):
            table.add_row("traceback", error["traceback"].rstrip())
    return table


def _time(iso: str | None) -> str:
    return iso[:23].replace("T", " ") if iso else ""
