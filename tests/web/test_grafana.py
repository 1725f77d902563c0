"""The Grafana dashboard in contrib/grafana: importable, and every metric,
label and label value its queries use is one that the dashboard's /metrics
or a worker's metrics port really exports after real jobs ran (a renamed
metric or label fails here, not on someone's screen). What its queries
show against a real Prometheus: tests/web/test_prometheus.py."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tarefa.metrics import render, worker_registry
from tarefa.web.server import create_app
from tarefa.worker import Worker

from ..conftest import ROOT
from ..tasks import add, always_fails, flaky, hold
from ..waits import PATIENCE, wait_for_list

DASHBOARD = ROOT / "contrib" / "grafana" / "tarefa.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

METRIC = re.compile(r"\btarefa_[a-z_]+")
STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
SELECTOR = re.compile(r"\b(tarefa_[a-z_]+)\s*\{([^}]*)\}")
MATCHER = re.compile(r'([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
GROUPING = re.compile(r"\b(by|without)\s*\(([^()]*)\)")
MATCHING = re.compile(r"\b(on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
LABEL_VALUES = re.compile(r"^label_values\((?:(.*),)?\s*([a-zA-Z_]\w*)\s*\)$")
TARGET_LABELS = {"job", "instance"}  # what Prometheus adds to every series it scrapes


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def all_panels(panels: list[dict]) -> Iterator[dict]:
    """Panels, and those inside collapsed rows."""
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def exprs(dashboard: dict) -> list[str]:
    """Every query: the panels' targets and the template variables'."""
    found = [t["expr"] for p in all_panels(dashboard["panels"]) for t in p.get("targets", [])]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]
            found.append(query["query"] if isinstance(query, dict) else query)
    return found


def masked(expr: str) -> str:
    """The expression with the insides of its strings blanked (same length),
    so that brackets in regular expressions are not taken for PromQL's."""
    return STRING.sub(lambda m: '"' + "_" * (len(m.group()) - 2) + '"', expr)


def brackets(expr: str) -> dict[int, int]:
    """Matching brackets by position, both ways; fails on unbalanced ones."""
    pairs, stack = {}, []
    for i, c in enumerate(masked(expr)):
        if c in "([{":
            stack.append((i, c))
        elif c in ")]}":
            assert stack, f"unbalanced {c!r} at {i} in {expr}"
            j, opening = stack.pop()
            assert opening + c in ("()", "[]", "{}"), f"{opening!r} closed by {c!r} in {expr}"
            pairs[j], pairs[i] = i, j
    assert not stack, f"unclosed {stack[-1][1]!r} in {expr}"
    return pairs


def grouped(expr: str) -> Iterator[tuple[list[str], str]]:
    """Each ``by (...)``/``without (...)``: its labels, and the text of the
    aggregation's argument, whichever side of it the clause stands."""
    text, pairs = masked(expr), brackets(expr)
    for m in GROUPING.finditer(text):
        labels = [label.strip() for label in m.group(2).split(",") if label.strip()]
        rest = text[m.end() :]
        after = m.end() + len(rest) - len(rest.lstrip())
        before = text[: m.start()].rstrip()
        if after < len(text) and text[after] == "(":  # sum by (q) (...)
            yield labels, expr[after : pairs[after] + 1]
        elif before.endswith(")"):  # sum(...) by (q)
            end = len(before) - 1
            yield labels, expr[pairs[end] : end + 1]
        else:
            raise AssertionError(f"cannot tell what {m.group()!r} groups in {expr}")


@pytest.fixture
def exported(app, r, run_worker) -> dict[str, dict[str, set[str]]]:
    """Real scrapes of the dashboard's /metrics and of a live worker's
    metrics after real jobs ran: sample name -> label -> the values seen."""
    add.enqueue_many([(1, 1)] * 3)
    flaky.with_options(retries=2, backoff=0.01).enqueue("g", 1)  # retried, then completes
    always_fails.with_options(queue="mail", retries=1, backoff=0.01).enqueue("x")  # fails
    run_worker(["default", "mail"])
    hold.enqueue("g")  # a live worker (it registers first) runs it during the scrape
    worker = Worker(app, ["default"], concurrency=2)
    thread = threading.Thread(target=asyncio.run, args=(worker.run(),))
    thread.start()
    try:
        assert wait_for_list(r, "test:started", 1) == ["g"]
        with TestClient(create_app(app), base_url="http://localhost") as client:
            response = client.get("/metrics")
        assert response.status_code == 200
        own, _ = render(worker_registry(worker))
    finally:
        r.rpush("test:release:g", 1)
        worker.stop()
        thread.join(PATIENCE)
    found: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    scraped = text_string_to_metric_families(response.text + own.decode())
    for family in scraped:
        for sample in family.samples:
            labels = found[sample.name]
            for label, value in sample.labels.items():
                labels[label].add(value)
    return {name: dict(labels) for name, labels in found.items()}


def test_the_dashboard_can_be_imported(dashboard):
    assert dashboard["title"] == "tarefa" and dashboard["uid"] == "tarefa"
    assert dashboard["tags"] == ["tarefa"] and isinstance(dashboard["schemaVersion"], int)
    assert dashboard["time"] == {"from": "now-1h", "to": "now"} and dashboard["refresh"] == "30s"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    queue = variables["queue"]
    assert queue["type"] == "query" and queue["multi"] and queue["includeAll"]
    assert queue["datasource"] == DATASOURCE
    panels = list(all_panels(dashboard["panels"]))
    ids = [p["id"] for p in panels]
    assert all(isinstance(i, int) for i in ids) and len(ids) == len(set(ids))
    taken: dict[tuple[int, int], str] = {}
    for panel in panels:
        assert panel["type"] and panel["title"]
        pos = panel["gridPos"]
        assert all(isinstance(pos[k], int) for k in "xywh"), panel["title"]
        assert pos["x"] >= 0 and pos["w"] > 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip() and target["datasource"] == DATASOURCE
        assert panel["fieldConfig"]["defaults"].get("unit") or panel["type"] == "table"


def test_the_queries_are_well_formed(dashboard):
    for expr in exprs(dashboard):
        brackets(expr)
        assert expr.count('"') % 2 == 0, expr
        assert METRIC.search(expr), f"no tarefa metric in {expr}"
        for labels, scope in grouped(expr):
            assert labels and METRIC.search(scope), f"{labels} group no metric in {expr}"


def check_against(dashboard: dict, exported: dict[str, dict[str, set[str]]]) -> set[str]:
    """Metric names (as sample names: _total, _bucket...), the labels of
    ``by``/``without`` on the metrics they aggregate, and the labels and
    literal values of ``{...}`` matchers, all against a scrape. Returns the
    metric names used."""
    used = set()
    for expr in exprs(dashboard):
        variable = LABEL_VALUES.match(expr)
        if variable:  # label_values(metric, label)
            metric, label = variable.groups()
            for name in METRIC.findall(metric or ""):
                assert label in exported.get(name, {}), f"{name} has no label {label!r}"
        names = METRIC.findall(masked(expr))
        used.update(names)
        for name in names:
            assert name in exported, f"{name} (in {expr}) is not exported"
        for labels, scope in grouped(expr):
            for name in METRIC.findall(masked(scope)):
                missing = set(labels) - set(exported[name]) - TARGET_LABELS
                assert not missing, f"{name} has no label {missing} (in {expr})"
        for m in MATCHING.finditer(masked(expr)):
            labels = {label.strip() for label in m.group(2).split(",") if label.strip()}
            for name in names:
                known = set(exported[name]) | TARGET_LABELS
                assert labels <= known, f"{m.group()} on {name} in {expr}"
        for name, selector in SELECTOR.findall(expr):
            for label, op, value in MATCHER.findall(selector):
                seen = exported[name].get(label)
                assert seen is not None, f"{name} has no label {label!r} (in {expr})"
                if "$" in value or op not in ("=", "=~"):
                    continue  # a template variable, or a negative match
                if op == "=" or re.fullmatch(r"[\w|]+", value):
                    missing = set(value.split("|") if op == "=~" else [value]) - seen
                    assert not missing, f"{name}{{{label}}} has no value {missing} ({expr})"
    return used


def test_every_metric_and_label_used_is_exported(dashboard, exported):
    used = check_against(dashboard, exported)
    # And the other way: every metric exported has its place on the dashboard.
    ours = {name for name in exported if name.startswith("tarefa_")}
    assert ours - used == set(), "exported but on no panel: add one"


def one_query(expr: str) -> dict:
    return {"panels": [{"targets": [{"expr": expr}]}], "templating": {"list": []}}


def test_the_checks_catch_a_rename(exported):
    """The checks above would fail on a renamed metric, label or state."""
    renamed = [
        "sum by (queue) (rate(tarefa_jobs_complete_total[5m]))",
        "sum by (queue_name) (rate(tarefa_jobs_completed_total[5m]))",
        "sum(rate(tarefa_jobs_completed_total[5m])) by (task, worker)",
        'sum(tarefa_queue_jobs{queue_name="default"})',
        'sum(tarefa_queue_jobs{state="deferred"})',
        'sum(tarefa_queue_jobs{state=~"queued|deferred"})',
    ]
    for expr in renamed:
        with pytest.raises(AssertionError):
            check_against(one_query(expr), exported)
    fine = 'sum by (queue, le) (rate(tarefa_job_duration_seconds_bucket{queue=~"$q"}[5m]))'
    assert check_against(one_query(fine), exported) == {"tarefa_job_duration_seconds_bucket"}
