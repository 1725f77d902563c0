"""``tarefa.contrib.flask_app:app``: the App of the Flask app ``flask
tarefa`` runs, the APP path it gives tarefa's commands. A process that
imports it afresh (a process-pool child) loads that Flask app first, from
``TAREFA_FLASK_APP``, as ``flask`` does: its factory runs, and with it
``Tarefa.init_app``, so its jobs run in the app context there too."""

from __future__ import annotations

from .flask import cli_app

app = cli_app()
