"""The boundary around the code that speaks Redis: outside ``store/``,
tarefa imports what it needs from the ``tarefa.store`` package itself,
never from the modules inside it (key names, scripts, replies, connections
stay behind that one door)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "tarefa"


def imported_modules(path: Path) -> list[str]:
    """The absolute names of the tarefa modules ``path`` imports from, at
    any depth of the file (in functions, under TYPE_CHECKING too)."""
    package = ".".join(("tarefa", *path.relative_to(SRC).parent.parts))
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                names.append(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return names


def test_only_the_store_package_is_imported_from_outside_it():
    crossings = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in sorted(SRC.rglob("*.py"))
        if "store" not in path.relative_to(SRC).parts
        for name in imported_modules(path)
        if name.startswith("tarefa.store.")
    ]
    assert crossings == []


def test_only_the_store_speaks_to_redis_py():
    """errors.py aside: its errors subclass redis-py's, so that code that
    caught those before tarefa raised its own keeps catching them."""
    users = [
        str(path.relative_to(SRC))
        for path in sorted(SRC.rglob("*.py"))
        if "store" not in path.relative_to(SRC).parts
        and any(name == "redis" or name.startswith("redis.") for name in imported_modules(path))
    ]
    assert users == ["errors.py"]
