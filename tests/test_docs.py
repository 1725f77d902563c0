"""docs/deployment.md, kept true.

Its ``tarefa`` commands (in shell blocks, systemd ``ExecStart=`` lines, and
the ``command``/``args`` of Compose and Kubernetes YAML) parse with tarefa's
own command line, nothing run, and each worker is given longer to stop than
its ``--grace``; those the text names in ``code spans`` are commands and
options tarefa has. Its metric names are ones tarefa exports, its REST paths
are routes of the dashboard, its Redis URLs are ones tarefa accepts, its
environment variables are ones tarefa reads, its alerts are in
contrib/prometheus/alerts.yml, its ``from tarefa... import`` lines import,
its links lead to files and headings that exist, its YAML parses, and
promtool (when installed) parses its PromQL.


The README and the site's other pages (docs/*.md) are held to the checks
that fit any page: their links, imports, YAML, REST paths, metrics, alerts,
and the tarefa commands of their code blocks.

Each check is a function from a guide's text to the problems it finds; the
last tests feed them broken text, so a check that finds nothing is caught.
"""

from __future__ import annotations

import importlib
import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
import redis
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tarefa import App
from tarefa.cli import main, worker
from tarefa.metrics import metrics_registry, worker_registry
from tarefa.store.connection import check_url
from tarefa.web.server import create_app
from tarefa.worker import Worker

from . import prometheus_server
from .conftest import ROOT

GUIDE = ROOT / "docs" / "deployment.md"
SHELLS = ("sh", "bash", "shell", "console")
# Tools a shell line runs tarefa through (`docker compose exec worker tarefa info`).
WRAPPERS = ("docker", "kubectl", "sudo", "env", "exec")
STOP_MARGIN = 5.0  # a worker exits within --grace plus about this (docs/workers.md)


# -- reading the guide -------------------------------------------------------------


@dataclass
class Segment:
    """A fenced block (``lang`` its info string), or the prose between blocks
    (``lang`` None)."""

    text: str
    lang: str | None
    line: int


def segments(md: str) -> list[Segment]:
    found: list[Segment] = []
    lang: str | None = None
    lines: list[str] = []
    start = 1
    for number, line in enumerate(md.splitlines(), 1):
        fence = re.match(r"\s*```(\S*)\s*$", line)
        if fence and lang is None:  # a block opens: the prose so far ends
            found.append(Segment("\n".join(lines), None, start))
            lang, lines, start = fence.group(1), [], number + 1
            continue
        if lang is not None and re.match(r"\s*```\s*$", line):
            found.append(Segment("\n".join(lines), lang, start))
            lang, lines, start = None, [], number + 1
            continue
        lines.append(line)
    assert lang is None, f"a code block opened at line {start - 1} never closes"
    found.append(Segment("\n".join(lines), None, start))
    return found


def headings(md: str) -> set[str]:
    """The anchors GitHub gives the headings: lowercased, punctuation dropped,
    spaces to '-', a repeated one numbered (-1, -2, ...)."""
    anchors: set[str] = set()
    for seg in segments(md):
        if seg.lang is not None:
            continue  # a '#' line in a code block is no heading
        for line in seg.text.splitlines():
            if match := re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line):
                slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
                anchor, n = slug, 0
                while anchor in anchors:
                    n += 1
                    anchor = f"{slug}-{n}"
                anchors.add(anchor)
    return anchors


@dataclass
class Command:
    argv: list[str]  # after "tarefa"
    where: str
    # What gives the worker time to stop (TimeoutStopSec, stop_grace_period,
    # terminationGracePeriodSeconds) and its seconds; None where not said here.
    stop: tuple[str, float] | None = None
    signal: str = "SIGTERM"  # what stops it (KillSignal, stop_signal)
    # In a sentence (`tarefa dashboard` has ...), not a whole command: parsed
    # without its required arguments, for unknown commands and options only.
    mention: bool = False


def is_tarefa(word: str) -> bool:
    """`tarefa`, or a virtualenv's (`/srv/shop/.venv/bin/tarefa`); not a
    path that ends in a folder named tarefa (`/tarefa/`)."""
    return word == "tarefa" or word.endswith("/bin/tarefa")


def logical_lines(seg: Segment) -> Iterator[tuple[int, str]]:
    """The block's lines, those ending in a backslash joined with the next,
    each with the line of the guide it starts on."""
    joined, start = "", 0
    for offset, line in enumerate(seg.text.splitlines()):
        if not joined:
            start = offset
        if line.endswith("\\"):
            joined += line[:-1] + " "
            continue
        yield seg.line + start, joined + line
        joined = ""
    if joined:
        yield seg.line + start, joined


def tarefa_in(line: str) -> Iterator[list[str]]:
    """The arguments of each tarefa command a shell line runs: first in its
    part of the line, or after a wrapper (`docker compose exec worker tarefa
    info`), or after `--` (`kubectl exec ... -- tarefa info`)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split, lexer.commenters = True, "#"
    parts: list[list[str]] = [[]]
    for word in lexer:  # one part per command: split at ; && || | > ...
        if word and set(word) <= set(";&|<>()"):
            parts.append([])
        else:
            parts[-1].append(word)
    for part in parts:
        for i, word in enumerate(part):
            if is_tarefa(word) and (i == 0 or part[0] in WRAPPERS or part[i - 1] == "--"):
                yield part[i + 1 :]
                break


def shell_commands(seg: Segment) -> Iterator[Command]:
    for number, line in logical_lines(seg):
        for argv in tarefa_in(line):
            yield Command(argv, f"{GUIDE.name}:{number}")


def mentioned_commands(seg: Segment) -> Iterator[Command]:
    """The tarefa commands in the prose's `code spans`."""
    for match in re.finditer(r"`([^`]+)`", seg.text):
        line = seg.line + seg.text.count("\n", 0, match.start())
        try:
            found = list(tarefa_in(match.group(1).replace("\n", " ")))
        except ValueError:
            continue  # not shell words (an unclosed quote): no command
        for argv in found:
            yield Command(argv, f"{GUIDE.name}:{line} (in the text)", mention=True)


def seconds(value: object) -> float:
    """systemd's and Docker's durations: 75, "75s", "1m15s", "1min 15s"."""
    text = str(value).replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    units = {"h": 3600, "min": 60, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|min|ms|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {value!r}")
    return sum(float(n) * units[u] for n, u in parts)


def systemd_commands(seg: Segment) -> Iterator[Command]:
    lines = list(logical_lines(seg))
    settings = dict(line.split("=", 1) for _, line in lines if re.match(r"[A-Za-z]+=", line))
    stop = None
    if "TimeoutStopSec" in settings:
        stop = ("TimeoutStopSec", seconds(settings["TimeoutStopSec"]))
    elif "[Unit]" in seg.text:  # a whole unit: systemd's default, 90 s
        stop = ("TimeoutStopSec (unset: 90 s)", 90.0)
    signal = settings.get("KillSignal", "SIGTERM")
    for number, line in lines:
        if not line.startswith("ExecStart=") or not line[len("ExecStart=") :].strip():
            continue  # (an empty ExecStart= resets the list in a drop-in)
        value = line[len("ExecStart=") :].lstrip("@-:+!")
        # A template's instance name: a number, as `tarefa-worker@1`.
        value = value.replace("%%", "\0").replace("%i", "1").replace("%I", "1")
        argv = shlex.split(value.replace("\0", "%"))
        if argv and is_tarefa(argv[0]):
            where = f"{GUIDE.name}:{number} (ExecStart)"
            yield Command(argv[1:], where, stop, signal)


def words(value: object) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def yaml_commands(seg: Segment) -> Iterator[Command]:
    """Compose services (entrypoint + command) and Kubernetes containers
    (command + args) that run tarefa."""

    def visit(node: object, stop: tuple[str, float] | None) -> Iterator[Command]:
        if isinstance(node, list):
            for item in node:
                yield from visit(item, stop)
        if not isinstance(node, dict):
            return
        if "containers" in node:  # a Kubernetes pod spec
            grace = node.get("terminationGracePeriodSeconds", 30)
            stop = ("terminationGracePeriodSeconds", float(grace))
        argv = [*words(node.get("entrypoint")), *words(node.get("command"))]
        argv += words(node.get("args"))
        if argv and is_tarefa(argv[0]):
            own = stop
            if own is None:  # a Compose service: Docker's default is 10 s
                own = ("stop_grace_period", seconds(node.get("stop_grace_period", "10s")))
            where = f"{GUIDE.name}:{seg.line} (YAML)"
            signal = node.get("stop_signal", "SIGTERM")
            yield Command(argv[1:], where, own, signal)
        for value in node.values():
            yield from visit(value, stop)

    try:
        documents = list(yaml.safe_load_all(seg.text))
    except yaml.YAMLError:
        return  # yaml_problems says so
    for document in documents:
        yield from visit(document, None)


def commands(md: str) -> list[Command]:
    found: list[Command] = []
    for seg in segments(md):
        if seg.lang in SHELLS:
            found += shell_commands(seg)
        elif seg.lang == "ini":
            found += systemd_commands(seg)
        elif seg.lang == "yaml":
            found += yaml_commands(seg)
        elif seg.lang is None:
            found += mentioned_commands(seg)
    return found


def parse(argv: list[str], mention: bool = False) -> click.Context | None:
    """The context tarefa's command line makes of ``argv``; nothing runs.
    Raises click's UsageError (or BadParameter) as `tarefa` would print it.
    ``mention``: a command named in a sentence, which may leave out its
    arguments (`tarefa dashboard` has ...): only its command and the names of
    its options are checked, and no context is made."""
    command: click.Command = main
    context: click.Context | None = None
    name, args = "tarefa", list(argv)
    while isinstance(command, click.Group):
        context = click.Context(command, info_name=name, parent=context)
        if not args:
            raise click.UsageError("no command given", context)
        name, args = args[0], args[1:]
        found = command.get_command(context, name)
        if found is None:
            raise click.UsageError(f"no such command {name!r}", context)
        command = found
    if not mention:
        return command.make_context(name, args, parent=context)
    options = {"--help"} | {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
    for word in args:
        if word.startswith("-") and word.split("=", 1)[0] not in options:
            raise click.NoSuchOption(word.split("=", 1)[0], ctx=context)
    return None


# -- the checks: each returns the problems it finds --------------------------------


def command_problems(md: str) -> list[str]:
    problems = []
    for cmd in commands(md):
        shown = shlex.join(["tarefa", *cmd.argv])
        try:
            context = parse(cmd.argv, cmd.mention)
        except click.ClickException as exc:
            problems.append(f"{cmd.where}: {shown}: {exc.format_message()}")
            continue
        if context is None or context.command is not worker:
            continue
        if cmd.signal not in ("SIGTERM", "SIGINT"):
            problems.append(f"{cmd.where}: {cmd.signal}: a worker stops on SIGTERM (or SIGINT)")
        grace = context.params["grace"]
        if cmd.stop is not None and cmd.stop[1] <= grace + STOP_MARGIN:
            problems.append(
                f"{cmd.where}: {cmd.stop[0]} is {cmd.stop[1]:g} s, not more than --grace "
                f"{grace:g} s plus {STOP_MARGIN:g}: the worker would be killed mid-grace"
            )
    return problems


METRIC = re.compile(r"\btarefa_[a-z_]+[a-z]\b")


def metric_problems(md: str, exported: set[str]) -> list[str]:
    return [
        f"{name}: no metric of that name (the dashboard's /metrics and a worker's port)"
        for name in sorted(set(METRIC.findall(md)))
        if name not in exported
    ]


def link_problems(md: str, base: Path) -> list[str]:
    problems = []
    prose = "\n".join(seg.text for seg in segments(md) if seg.lang is None)
    for target in re.findall(r"\]\(([^)\s]+)\)", prose):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        file = (base / path).resolve() if path else None
        if file is not None and not file.exists():
            problems.append(f"{target}: no file {file}")
            continue
        if anchor:
            text = file.read_text() if file is not None else md
            if anchor not in headings(text):
                where = path or "this guide"
                problems.append(f"{target}: no heading of {where} has the anchor #{anchor}")
    return problems


def yaml_problems(md: str) -> list[str]:
    problems = []
    for seg in segments(md):
        if seg.lang == "yaml":
            try:
                list(yaml.safe_load_all(seg.text))
            except yaml.YAMLError as exc:
                problems.append(f"{GUIDE.name}:{seg.line}: YAML does not parse: {exc}")
    return problems


# Any scheme that begins like one of Redis's, so that a misspelt one is found too.
URL = re.compile(r"\b(?:redis|unix)[a-z+]*://[^\s\"'`)]+")


def url_problems(md: str) -> list[str]:
    problems = []
    for seg in segments(md):
        for match in URL.finditer(seg.text):
            url = match.group().rstrip(".,;:")  # the sentence's, not the URL's
            line = seg.line + seg.text.count("\n", 0, match.start())
            if "..." in url:
                continue  # a URL's form, not a URL
            try:
                check_url(url)
                if url.startswith(("redis://", "rediss://", "unix://")):
                    redis.connection.parse_url(url)
            except ValueError as exc:
                problems.append(f"{GUIDE.name}:{line}: {url}: {exc}")
    return problems


HTTP_PATH = re.compile(r"(?<![\w.:/])/(?:api/v1/[\w{}./-]*\w|metrics|docs|openapi\.json)\b")


def path_problems(md: str) -> list[str]:
    web = create_app(App(url="redis://127.0.0.1:1/0"))
    # The REST API's routes (its OpenAPI document), and the others: /, /metrics, /docs, ...
    paths = set(web.openapi()["paths"]) | {getattr(r, "path", "") for r in web.routes}
    routes = [
        re.compile(re.sub(r"\\\{\w+(?::\w+)?\\\}", "[^/]+", re.escape(path)) + "$")
        for path in paths
        if path
    ]
    return [
        f"{path}: no route of the dashboard answers it"
        for path in sorted(set(HTTP_PATH.findall(md)))
        if not any(route.match(path) for route in routes)
    ]


def env_problems(md: str) -> list[str]:
    source = "\n".join(p.read_text() for p in (ROOT / "src" / "tarefa").rglob("*.py"))
    return [
        f"{name}: tarefa reads no such variable"
        for name in sorted(set(re.findall(r"\bTAREFA_[A-Z_]*[A-Z]\b", md)))
        if f'"{name}"' not in source
    ]


def alert_problems(md: str) -> list[str]:
    rules = yaml.safe_load((ROOT / "contrib" / "prometheus" / "alerts.yml").read_text())
    alerts = {rule.get("alert") for group in rules["groups"] for rule in group["rules"]}
    return [
        f"{name}: no such alert in contrib/prometheus/alerts.yml"
        for name in sorted(set(re.findall(r"\bTarefa[A-Z]\w+", md)))
        if name not in alerts
    ]


def import_problems(md: str) -> list[str]:
    problems = []
    for module, name in set(re.findall(r"\bfrom (tarefa[\w.]*) import (\w+)", md)):
        try:
            getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            problems.append(f"from {module} import {name}: {exc}")
    return problems


def promql_queries(md: str) -> list[str]:
    """The `query:` of each Prometheus trigger (KEDA) in the YAML."""
    found: list[str] = []

    def visit(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") == "prometheus" and "query" in node.get("metadata", {}):
                found.append(node["metadata"]["query"])
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    for seg in segments(md):
        if seg.lang == "yaml":
            try:
                documents = list(yaml.safe_load_all(seg.text))
            except yaml.YAMLError:
                continue  # yaml_problems says so
            for document in documents:
                visit(document)
    return found


# -- the guide ------------------------------------------------------------------


@pytest.fixture(scope="module")
def guide() -> str:
    return GUIDE.read_text()


@pytest.fixture
def exported(app) -> set[str]:
    """Every metric name tarefa exports: the dashboard's /metrics and a
    worker's port, as Prometheus reads them (families and their samples)."""
    registries = [metrics_registry(app), worker_registry(Worker(app, app.task_queues()))]
    names: set[str] = set()
    for registry in registries:
        for family in text_string_to_metric_families(generate_latest(registry).decode()):
            names.add(family.name)
            names.update(sample.name for sample in family.samples)
            if family.type == "counter":
                names.add(family.name + "_total")
    return names


def test_the_guide_has_commands_of_every_kind(guide):
    found = commands(guide)
    wheres = [c.where for c in found]
    assert sum("(ExecStart)" in w for w in wheres) >= 3
    assert sum("(YAML" in w for w in wheres) >= 4
    assert sum("(" not in w for w in wheres) >= 4  # shell lines
    assert sum("(in the text)" in w for w in wheres) >= 4
    assert {c.argv[0] for c in found} >= {"worker", "dashboard", "info"}
    stops = {c.stop[0] for c in found if c.stop}
    assert {"TimeoutStopSec", "stop_grace_period", "terminationGracePeriodSeconds"} <= stops


def test_every_command_parses_and_outlasts_its_grace(guide):
    assert command_problems(guide) == []


def test_every_metric_is_exported(guide, exported):
    assert "tarefa_queue_oldest_ready_age_seconds" in METRIC.findall(guide)
    assert metric_problems(guide, exported) == []


def test_every_link_leads_somewhere(guide):
    assert "no-job-lost.md#redis-in-production" in guide
    assert link_problems(guide, GUIDE.parent) == []


def test_every_yaml_block_parses(guide):
    assert sum(seg.lang == "yaml" for seg in segments(guide)) >= 3
    assert yaml_problems(guide) == []


def test_every_redis_url_is_accepted(guide):
    assert url_problems(guide) == []


def test_every_http_path_is_a_route(guide):
    assert "/api/v1/health" in HTTP_PATH.findall(guide)
    assert path_problems(guide) == []


def test_every_variable_alert_and_import_exists(guide):
    assert env_problems(guide) == []
    assert alert_problems(guide) == []
    assert import_problems(guide) == []


@pytest.mark.skipif(not prometheus_server.promtool(), reason="no promtool (Debian's prometheus)")
def test_promtool_accepts_the_queries(guide, tmp_path):
    queries = promql_queries(guide)
    assert queries
    rules = {"groups": [{"name": "guide", "rules": [
        {"alert": f"Query{i}", "expr": query} for i, query in enumerate(queries)
    ]}]}  # fmt: skip
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules))
    check = subprocess.run(
        [prometheus_server.promtool(), "check", "rules", str(path)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr


# -- the checks catch mistakes ------------------------------------------------------


BROKEN = """
# A guide

[there](#nowhere) and [the README](../README.md#no-such-section) and [gone](../nope.md)

```sh
tarefa worker shop.jobs:app --gracee 60
docker compose exec worker tarefa jobs
tarefa dashboard shop.jobs:app \\
    --port eighty
```

```ini
[Unit]
Description=x

[Service]
ExecStart=/srv/.venv/bin/tarefa worker shop.jobs:app --grace 60
KillSignal=SIGKILL
```

```yaml
services:
  worker:
    command: ["tarefa", "worker", "shop.jobs:app", "-c", "0"]
  quick:
    command: ["tarefa", "worker", "shop.jobs:app"]
  slow:
    command: tarefa worker shop.jobs:app --grace 60
    stop_grace_period: 1m
    stop_signal: SIGKILL
---
spec:
  terminationGracePeriodSeconds: 30
  containers:
    - command: ["tarefa"]
      args: ["worker", "shop.jobs:app"]
```

```yaml
key: [unclosed
```

TAREFA_URL=redis+sentinl://host:26379/shop, redis+sentinel://host:26379/,
`tarefa_queue_oldest_age_seconds`, `/api/v1/no-such-path`, `TAREFA_NO_SUCH`,
`TarefaNoSuchAlert`, `from tarefa.store.acl import no_such_rule`; `tarefa dashboard`
takes `tarefa dashboard --root-path`, and `/tarefa/` is a path.
"""


def test_each_check_finds_what_is_wrong(exported):
    problems = "\n".join(command_problems(BROKEN))
    assert "--gracee" in problems and "No such option" in problems
    assert "tarefa jobs" in problems and "Missing argument 'QUEUE'" in problems
    assert f"{GUIDE.name}:9: tarefa dashboard shop.jobs:app --port eighty" in problems
    assert "(in the text): tarefa dashboard --root-path: No such option" in problems
    assert "(in the text): tarefa dashboard:" not in problems  # a mention, not a command
    assert "/tarefa/" not in problems
    assert "-c" in problems and "x>=1" in problems
    assert "TimeoutStopSec (unset: 90 s) is 90 s" not in problems  # 90 > 60 + 5
    assert "stop_grace_period is 10 s" in problems  # Docker's default, under --grace 30
    assert "stop_grace_period is 60 s" in problems  # not more than --grace 60 + 5
    assert "(ExecStart): SIGKILL: a worker stops on SIGTERM" in problems
    assert "(YAML): SIGKILL: a worker stops on SIGTERM" in problems
    assert "terminationGracePeriodSeconds is 30 s" in problems
    assert metric_problems(BROKEN, exported) == [
        "tarefa_queue_oldest_age_seconds: no metric of that name (the dashboard's /metrics "
        "and a worker's port)"
    ]
    links = "\n".join(link_problems(BROKEN, GUIDE.parent))
    assert "#nowhere" in links and "#no-such-section" in links and "nope.md" in links
    assert len(yaml_problems(BROKEN)) == 1
    urls = "\n".join(url_problems(BROKEN))
    assert "redis+sentinl://" in urls and "needs the name of the master" in urls
    assert path_problems(BROKEN) == ["/api/v1/no-such-path: no route of the dashboard answers it"]
    assert env_problems(BROKEN) == ["TAREFA_NO_SUCH: tarefa reads no such variable"]
    assert alert_problems(BROKEN) == [
        "TarefaNoSuchAlert: no such alert in contrib/prometheus/alerts.yml"
    ]
    assert len(import_problems(BROKEN)) == 1


def test_anchors_follow_githubs_rules():
    md = '# What "no job lost" means, exactly\n## Redis in production\n## Notes\n## Notes\n'
    assert headings(md) == {
        "what-no-job-lost-means-exactly", "redis-in-production", "notes", "notes-1"
    }  # fmt: skip
    assert "redis-in-production" in headings((ROOT / "docs" / "no-job-lost.md").read_text())


def test_a_command_with_an_option_tarefa_lacks_is_a_problem():
    assert command_problems("```sh\ntarefa worker app --no-such-option\n```\n")
    assert command_problems(code_blocks("`tarefa`\n```sh\ntarefa worker app --no-such-option\n```"))
    assert command_problems(code_blocks("`tarefa` is a command, `redis://[:password@]host`")) == []


# -- the site's other pages and the README -------------------------------------------

# The README and every page of the site (mkdocs.yml: docs_dir), kept true with
# the checks above that hold for any page.
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def code_blocks(md: str) -> str:
    """The page's code blocks alone: prose names `tarefa` and URL forms
    (`redis://[:password@]host`) that are no commands, which the checks of
    the deployment guide's own prose hold to."""
    return "\n".join(f"```{s.lang}\n{s.text}\n```" for s in segments(md) if s.lang is not None)


@pytest.fixture(params=PAGES, ids=lambda path: path.relative_to(ROOT).as_posix())
def page(request) -> Path:
    return request.param


def test_the_site_has_its_pages():
    names = {path.name for path in PAGES}
    assert {"README.md", "index.md", "getting-started.md", "deployment.md"} <= names
    nav = (ROOT / "mkdocs.yml").read_text()
    missing = [path.name for path in PAGES[1:] if f": {path.name}" not in nav]
    assert missing == [], "pages not in mkdocs.yml's nav"


def test_every_page_links_and_imports_right(page):
    md = page.read_text()
    assert link_problems(md, page.parent) == []
    assert import_problems(md) == []
    assert yaml_problems(md) == []


def test_every_page_names_real_commands_routes_metrics_and_alerts(page, exported):
    md = page.read_text()
    assert command_problems(code_blocks(md)) == []
    assert path_problems(md) == []
    # tarefa_outbox is the outbox's table, not a metric.
    assert metric_problems(md.replace("tarefa_outbox", ""), exported) == []
    assert alert_problems(md) == []


def test_the_pages_import_from_tarefa_in_their_code():
    # So that an empty import check is caught: the pages do import.
    assert sum(bool(re.search(r"\bfrom tarefa[\w.]* import", p.read_text())) for p in PAGES) >= 8
