"""A framework's command line running ``tarefa``'s commands: ``manage.py
tarefa worker -q emails`` is ``tarefa worker APP -q emails``, with APP the
project's App."""

from __future__ import annotations

from collections.abc import Sequence

from ..cli import main


def run_tarefa(args: Sequence[str], app_path: str, prog_name: str) -> None:
    """Run the ``tarefa`` command ``args`` names, with ``app_path`` as its APP
    where it takes one; exits as ``tarefa`` does (SystemExit)."""
    main(args=with_app(list(args), app_path), prog_name=prog_name)


def with_app(args: list[str], app_path: str) -> list[str]:
    """``args`` with ``app_path`` after the command's name, if that command
    takes an APP (``worker``, ``cron``, ``tasks``, ``dashboard``); the
    operator's commands (``info``, ``jobs``...) need only Redis."""
    command = main.commands.get(args[0]) if args else None
    if command is not None and any(param.name == "app_path" for param in command.params):
        return [args[0], app_path, *args[1:]]
    return args
