"""What the wheel and the sdist carry: every file of src/tarefa that is not
Python (the Lua scripts, the dashboard's files, py.typed) is named by a glob
of pyproject.toml's package-data, so a new kind of data file cannot be left
out of them. And what the core install lacks: ``tarefa dashboard`` without
the ``dashboard`` extra says which extra to install. Fast: pyproject.toml and
the tree, no build (``.ci/package`` builds and installs both)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from .conftest import PYTHONPATH, ROOT

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


# Runs tarefa's command line with the modules named in argv[1] (comma-separated)
# unimportable, as in an install without the extra that brings them.
WITHOUT = """
import sys

blocked = sys.argv[1].split(",")


def is_blocked(name):
    return any(name == b or name.startswith(b + ".") for b in blocked)


class Blocker:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if is_blocked(name):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Blocker)
for name in [m for m in sys.modules if is_blocked(m)]:
    del sys.modules[name]
from tarefa.cli import main

sys.argv = ["tarefa", *sys.argv[2:]]
main()
"""


def tarefa_without(modules: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # A Redis that refuses: nothing here may start an embedded server or reach one.
    env = dict(os.environ, PYTHONPATH=PYTHONPATH, TAREFA_URL="redis://127.0.0.1:1/0")
    return subprocess.run(
        [sys.executable, "-c", WITHOUT, modules, *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_the_dashboard_extra_is_named_in_pyproject():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"][
        "optional-dependencies"
    ]
    names = {spec.partition(">")[0] for spec in extras["dashboard"]}
    assert names == {"fastapi", "uvicorn"}


@pytest.mark.parametrize(
    ("missing", "named"),
    [("fastapi", "fastapi"), ("starlette", "starlette"), ("uvicorn", "uvicorn"),
     ("fastapi,starlette,uvicorn", "uvicorn")],
)  # fmt: skip
def test_dashboard_without_its_extra_says_which_to_install(missing, named, tmp_path):
    done = tarefa_without(missing, "dashboard", "tarefa.demo:app", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == (
        f"Error: tarefa dashboard needs {named}, which is not installed: "
        "pip install 'tarefa[dashboard]'"
    )


def test_the_core_commands_run_without_the_dashboard_extra(tmp_path):
    done = tarefa_without("fastapi,starlette,uvicorn", "tasks", "tarefa.demo:app", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "send_email" in done.stdout


def test_another_missing_module_is_not_blamed_on_the_extra(tmp_path):
    """A module missing for another reason is the error it is, not advice."""
    done = tarefa_without("tarefa.web.api", "dashboard", "tarefa.demo:app", cwd=tmp_path)
    assert done.returncode == 1
    assert "ModuleNotFoundError: No module named 'tarefa.web.api'" in done.stderr
    assert "tarefa[dashboard]" not in done.stderr
