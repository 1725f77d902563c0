"""Imports point down: no module of tarefa imports, at run time, one that
imports it back (through any chain). Imports made only for type checking
(under ``if TYPE_CHECKING:``) are not run, and are left out."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

SRC = Path(__file__).resolve().parent.parent / "src" / "tarefa"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in SRC.rglob("*.py")}


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(node: ast.AST, name: str) -> set[str]:
    """The tarefa modules ``node`` imports at run time (in functions too)."""
    found: set[str] = set()
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    for child in ast.iter_child_nodes(node):
        if _is_type_checking(child):
            for other in child.orelse:  # (an else: runs)
                found |= _imports(other, name)
            continue
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
        found |= _imports(child, name)
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


def test_the_graph_sees_relative_function_level_and_package_imports():
    graph = import_graph()
    assert graph.has_edge("tarefa.cli", "tarefa.worker")  # inside the worker command
    assert graph.has_edge("tarefa.worker.process_child", "tarefa.logs")  # from .. import logs
    assert graph.has_edge("tarefa.store.store", "tarefa.records")  # from ..records import
    assert not graph.has_edge("tarefa.job", "tarefa.app")  # only under TYPE_CHECKING
