"""Loading an App by its path, ``package.module:attribute``: what ``tarefa``'s
commands are given, and what a process-pool child imports. It sits above the
App: it imports app.py, which knows nothing of it.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType, TracebackType

from .app import App
from .errors import AppImportError


def load_app(path: str) -> App:
    """The App at ``package.module:attribute`` (what ``tarefa worker`` is given)."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValueError(f"expected 'package.module:app', got {path!r}")
    if "" not in sys.path:
        sys.path.insert(0, "")  # like `python -m`: the current directory is importable
    module = _import_app_module(module_name)
    try:
        app = getattr(module, attr)
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not isinstance(app, App):
        raise TypeError(f"{path} is a {type(app).__name__}, not a tarefa App")
    return app


def _import_app_module(module_name: str) -> ModuleType:
    """Import the app's module. Not found itself: ModuleNotFoundError, as is.
    Found, but a module it imports is missing, or its code raised:
    AppImportError, saying which (the original as its cause)."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (module_name + ".").startswith(missing + "."):
            raise  # the app's own module (or its package) is what is missing
        chain = _importing(exc.__traceback__)
        steps = " -> ".join([*chain, missing])
        raise AppImportError(
            f"importing {module_name} failed: it needs the module {missing!r}, which is not "
            f"installed or not importable here (import chain: {steps})",
            missing=missing,
            chain=chain,
        ) from exc
    except Exception as exc:
        raise AppImportError(
            f"importing {module_name} raised {type(exc).__name__}: {exc}", chain=[module_name]
        ) from exc


def _importing(tb: TracebackType | None) -> list[str]:
    """The modules whose top-level code a traceback runs through (the ones
    being imported), outermost first, each once."""
    names: list[str] = []
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name == "<module>":
            names.append(frame.f_globals.get("__name__", "?"))
        tb = tb.tb_next
    return list(dict.fromkeys(names))


def find_app_path(app: App) -> str | None:
    """``package.module:attribute`` of a module-level name bound to ``app``: the
    path ``load_app`` takes, so a child process can import it. The modules of
    its tasks are looked at first, then every loaded module."""
    modules = [name.partition(":")[0] for name in app.tasks]
    for module_name in dict.fromkeys([*modules, *list(sys.modules)]):
        module = sys.modules.get(module_name)
        if module is None:
            continue
        try:
            names = [k for k, v in list(vars(module).items()) if v is app]
        except TypeError:  # no __dict__
            continue
        if names:
            if module_name == "__main__":  # run with -m: name it as an import would
                spec = getattr(module, "__spec__", None)
                module_name = spec.name if spec else module_name
            return f"{module_name}:{sorted(names, key=lambda n: (n != 'app', n))[0]}"
    return None
