"""Imports point down only (docs/architecture.md, "Layers"): no module of
tarefa imports one that imports it back, through any chain, and none imports
a module of a layer above its own. Every import counts: at the top of a
module, inside a function, and under ``if TYPE_CHECKING:`` (a circle the
type checker walks is still one class of ideas spread over two modules)."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

SRC = Path(__file__).resolve().parent.parent / "src" / "tarefa"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in SRC.rglob("*.py")}

# docs/architecture.md's layers, top first: a module imports only from its own
# layer or those below. Each entry names modules, or packages ending in ".*".
LAYERS: list[list[str]] = [
    ["tarefa.contrib.*"],  # in frameworks: their commands run tarefa's
    ["tarefa.__main__", "tarefa.cli", "tarefa.cli_ops", "tarefa.cli_worker", "tarefa.cli_relay"],
    ["tarefa.demo", "tarefa.web.*", "tarefa.cli_tables", "tarefa.supervisor"],
    ["tarefa"],  # the package: the names users import
    ["tarefa.manage", "tarefa.schema", "tarefa.metrics", "tarefa.outbox"],
    ["tarefa.testing.*"],
    ["tarefa.worker", "tarefa.worker.worker"],  # the package, and the Worker that wires...
    ["tarefa.worker.*"],  # ...its collaborators, which never import it
    ["tarefa.loading"],
    ["tarefa.app"],
    ["tarefa.task", "tarefa.job", "tarefa.options", "tarefa.context"],
    ["tarefa.store.*"],
    [
        "tarefa.logs", "tarefa.backend", "tarefa.serializer", "tarefa.stats", "tarefa.limits",
        "tarefa.durations", "tarefa.hosts", "tarefa.errors", "tarefa.records",
        "tarefa.call_check", "tarefa.job_scopes", "tarefa.tracing", "tarefa.batch",
    ],
]  # fmt: skip


def layer_of(name: str) -> int:
    """The index in LAYERS of the first entry naming ``name`` (0 is the top)."""
    for index, entries in enumerate(LAYERS):
        for entry in entries:
            package = entry.removesuffix(".*")
            if name == package or (entry.endswith(".*") and name.startswith(f"{package}.")):
                return index
    raise AssertionError(f"{name} is in no layer: add it to LAYERS and to docs/architecture.md")


def _imports(node: ast.AST, name: str) -> set[str]:
    """The tarefa modules ``node`` imports, wherever the import is."""
    found: set[str] = set()
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    for child in ast.walk(node):
        if isinstance(child, ast.ImportFrom):
            base = child.module or ""
            if child.level:
                parent = package.rsplit(".", child.level - 1)[0] if child.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            submodules = {f"{base}.{a.name}" for a in child.names} & MODULES.keys()
            found |= submodules
            if len(submodules) < len(child.names) and base in MODULES:
                found.add(base)
        elif isinstance(child, ast.Import):
            found |= {a.name for a in child.names} & MODULES.keys()
    return found - {name}


def import_graph() -> nx.DiGraph:
    graph = nx.DiGraph()
    for name, path in MODULES.items():
        graph.add_node(name)
        graph.add_edges_from(
            (name, imported) for imported in _imports(ast.parse(path.read_text()), name)
        )
    return graph


def test_no_module_imports_one_that_imports_it_back():
    circles = [sorted(c) for c in nx.strongly_connected_components(import_graph()) if len(c) > 1]
    assert circles == []


def test_every_module_is_in_a_layer():
    for name in MODULES:
        layer_of(name)


def test_no_module_imports_from_a_layer_above_its_own():
    upward = [
        f"{importer} -> {imported}"
        for importer, imported in import_graph().edges
        if layer_of(imported) < layer_of(importer)
    ]
    assert upward == []


def test_the_graph_sees_relative_function_level_type_checking_and_package_imports():
    graph = import_graph()
    assert graph.has_edge("tarefa.cli", "tarefa.worker")  # inside the worker command
    assert graph.has_edge("tarefa.worker.process_child", "tarefa.logs")  # from .. import logs
    assert graph.has_edge("tarefa.store.store", "tarefa.records")  # from ..records import
    assert graph.has_edge("tarefa.metrics", "tarefa.worker")  # under TYPE_CHECKING
