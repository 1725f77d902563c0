"""``manage.py tarefa ...``: every ``tarefa`` command (``manage.py tarefa
--help``), with Django set up and the project's App as APP."""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand

from ....commands import run_tarefa

APP = "tarefa.contrib.django.app:app"


class Command(BaseCommand):
    help = "tarefa's commands (worker, queues, jobs, dashboard...) for settings.TAREFA's App"

    def run_from_argv(self, argv: list[str]) -> None:
        # tarefa's own command line parses the arguments, not Django's.
        run_tarefa(argv[2:], APP, prog_name=f"{os.path.basename(argv[0])} {argv[1]}")

    def handle(self, *args: Any, **options: Any) -> None:  # call_command("tarefa")
        run_tarefa(list(args), APP, prog_name="tarefa")
