"""The project's App, as ``settings.TAREFA["APP"]`` names it."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from ...app import App
from ...loading import load_app


@cache
def project_app() -> App:
    """The App ``settings.TAREFA["APP"]`` names (``"package.module:app"``)."""
    config = getattr(settings, "TAREFA", None)
    if not isinstance(config, dict) or not isinstance(config.get("APP"), str):
        raise ImproperlyConfigured(
            'tarefa.contrib.django needs settings.TAREFA = {"APP": "package.module:app"}, '
            "naming the project's tarefa App"
        )
    try:
        return load_app(config["APP"])
    except (ImportError, ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f'settings.TAREFA["APP"]: {exc}') from exc
