"""``tarefa.contrib.django.app:app``: the project's App, with Django set up
first. ``manage.py tarefa`` hands this path to tarefa's commands, so that a
process that imports the App afresh (a process-pool child, a ``-p N``
worker) sets Django up too, from ``DJANGO_SETTINGS_MODULE``, as manage.py
set it."""

from __future__ import annotations

import django
from django.apps import apps

from .settings import project_app

if not apps.ready:  # (manage.py set it up already; a fresh process has not)
    django.setup()
app = project_app()
