"""What the wheel and the sdist carry: every file of src/tarefa that is not
Python (the Lua scripts, the dashboard's files, py.typed) is named by a glob
of pyproject.toml's package-data, so a new kind of data file cannot be left
out of them. Fast: pyproject.toml and the tree, no build (``.ci/package``
builds and installs both)."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
PACKAGE = SRC / "tarefa"


def package_data() -> dict[str, list[str]]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    data: dict[str, list[str]] = pyproject["tool"]["setuptools"]["package-data"]
    return data


def data_files() -> list[Path]:
    """The files of src/tarefa that are not Python source nor its byte code."""
    return sorted(
        path
        for path in PACKAGE.rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    )


def packages() -> list[Path]:
    return sorted(init.parent for init in PACKAGE.rglob("__init__.py"))


def covered(data: Mapping[str, Iterable[str]]) -> set[Path]:
    """The files setuptools puts in the wheel for ``data``: each key is a
    package (``*`` every package), each glob relative to its folder."""
    files: set[Path] = set()
    for name, globs in data.items():
        folders = packages() if name == "*" else [SRC.joinpath(*name.split("."))]
        for folder in folders:
            for pattern in globs:
                files.update(p for p in folder.glob(pattern) if p.is_file())
    return files


def uncovered(data: Mapping[str, Iterable[str]]) -> list[str]:
    have = covered(data)
    return [str(p.relative_to(SRC)) for p in data_files() if p not in have]


def test_there_are_data_files_of_each_kind():
    names = {str(p.relative_to(PACKAGE)) for p in data_files()}
    assert "py.typed" in names
    assert "web/static/index.html" in names
    assert "store/lua/enqueue.lua" in names
    assert any(n.startswith("store/lua/includes/") for n in names)


def test_every_data_file_is_in_package_data():
    assert uncovered(package_data()) == [], (
        "files the wheel would lack: add a glob to [tool.setuptools.package-data]"
    )


def test_every_glob_names_a_file():
    for name, globs in package_data().items():
        for pattern in globs:
            assert covered({name: [pattern]}), f"package-data {name}: {pattern} matches no file"


def test_removing_any_glob_leaves_files_out():
    """The check above notices each glob's absence (no glob is redundant)."""
    for name, globs in package_data().items():
        for pattern in globs:
            fewer = {**package_data(), name: [g for g in globs if g != pattern]}
            assert uncovered(fewer), f"without {pattern!r}, no file would be missing"
