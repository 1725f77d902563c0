"""Rich tables the command line prints, from the JSON-ready values of
``manage.py`` (the same the REST API answers).

Every cell and title is a ``Text`` made by ``plain()``: job ids, task names,
errors, progress messages and worker names are anyone's strings, and rich
reads a str as markup ("[/x]" raised MarkupError, ":smile:" became an emoji).
"""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

STATES = ("queued", "waiting", "scheduled", "active", "completed", "failed")

# Control characters but newline and tab, shown as \xNN: an error message
# holding "\x1b[2J" must not clear the operator's terminal. (Text strips only
# a few of them, and not ESC.)
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0)) if chr(c) not in "\n\t"}


def plain(value: Any, style: str = "") -> Text:
    """``value`` as text shown as it is: no markup, no emoji codes, no control sequences."""
    return Text(str(value).translate(_CONTROL), style=style)


def add_row(table: Table, *cells: Any) -> None:
    table.add_row(*(plain(cell) for cell in cells))


def titled(title: str, **options: Any) -> Table:
    return Table(title=plain(title, style="table.title"), **options)


def queues_table(queues: list[dict[str, Any]]) -> Table:
    table = titled("queues")
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
        add_row(table, name, *(q["counts"][s] for s in STATES), oldest, ever)
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
    table = titled("workers")
    for column in ("worker", "host", "pid", "queues", "running", "concurrency", "up", "last beat"):
        table.add_column(column)
    for w in workers:
        up, beat = f"{w['uptime']:.0f} s", f"{w['last_beat_ago']:.0f} s ago"
        add_row(table, w["id"], w["host"], w["pid"], ",".join(w["queues"]), w["running"],
                w["concurrency"], up, beat)  # fmt: skip
    return table


def jobs_table(page: dict[str, Any]) -> Table:
    shown = len(page["jobs"])
    first = page["offset"] + 1 if shown else 0
    last = page["offset"] + shown
    table = titled(f"{page['queue']}: {page['state']} jobs {first}-{last} of {page['total']}")
    for column in ("id", "task", "attempts", "enqueued", "finished", "error"):
        table.add_column(column)
    for j in page["jobs"]:
        error = f"{j['error']['type']}: {j['error']['message']}" if j["error"] else ""
        add_row(table, j["id"], j["task"], j["attempts"], _time(j["enqueued_at"]),
                _time(j["finished_at"]), error)  # fmt: skip
    return table


def job_table(job: dict[str, Any]) -> Table:
    table = titled(f"job {job['id']}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for name in ("queue", "task", "state", "attempts", "stalls", "key", "priority", "worker",
                 "enqueued_at", "started_at", "finished_at", "args", "kwargs", "options",
                 "parents", "progress", "result"):  # fmt: skip
        value = job.get(name)
        if value not in (None, [], {}):
            add_row(table, name, value)
    if job.get("error"):
        error = job["error"]
        add_row(table, "error", f"{error.get('type')}: {error.get('message')}")
        if error.get("traceback"):
            add_row(table, "traceback", error["traceback"].rstrip())
    return table


def _time(iso: str | None) -> str:
    return iso[:23].replace("T", " ") if iso else ""
