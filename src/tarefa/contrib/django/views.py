"""The dashboard, the REST API and the metrics in a Django project, for its
staff: ``path("admin/queues/", include("tarefa.contrib.django.urls"))``.

Each request is handed to tarefa's ASGI app (``tarefa.web``) through a2wsgi,
mounted at the URLconf's path. Django's staff login guards it (the admin's
login page for a visitor who is not staff), but for ``api/v1/health``, a load
balancer's check. Django's CSRF check is off for it: the dashboard's own
guard refuses a state-changing request a browser sends from another site.
"""

from __future__ import annotations

import io
from functools import cache
from typing import TYPE_CHECKING, Any

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from .settings import project_app

if TYPE_CHECKING:
    from a2wsgi import ASGIMiddleware

HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "upgrade"})


@cache
def _dashboard() -> ASGIMiddleware:
    try:
        from a2wsgi import ASGIMiddleware

        from ...web.server import create_app
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"tarefa's dashboard needs its extras ({exc.name} is missing): "
            "pip install 'tarefa[dashboard,django]'"
        ) from exc
    # Django checked the Host header against ALLOWED_HOSTS already.
    return ASGIMiddleware(create_app(project_app(), allowed_hosts=["*"]))  # type: ignore[arg-type]


@csrf_exempt
def health(request: HttpRequest) -> HttpResponse:
    return _forward(request, "api/v1/health")


@csrf_exempt
@staff_member_required
def dashboard(request: HttpRequest, rest: str = "") -> HttpResponse:
    return _forward(request, rest)


def _forward(request: HttpRequest, rest: str) -> HttpResponse:
    """tarefa's answer to ``request``, whose path ends with ``rest``."""
    mount = request.path[: len(request.path) - len(rest)].rstrip("/")
    environ: dict[str, Any] = {k: v for k, v in request.META.items() if isinstance(v, str)}
    environ |= {
        "SCRIPT_NAME": _wsgi_text(mount),
        "PATH_INFO": _wsgi_text("/" + rest),
        "REQUEST_METHOD": request.method or "GET",
        "QUERY_STRING": request.META.get("QUERY_STRING", ""),
        "SERVER_NAME": request.get_host().rpartition(":")[0] or request.get_host(),
        "SERVER_PORT": str(request.get_port()),
        "wsgi.url_scheme": request.scheme or "http",
        "wsgi.input": io.BytesIO(request.body),
        "wsgi.errors": io.StringIO(),
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    environ["CONTENT_LENGTH"] = str(len(request.body))
    started: list[Any] = []
    answer = _dashboard()(environ, lambda status, headers, *_: started.extend((status, headers)))  # type: ignore[arg-type]
    try:
        body = b"".join(answer)
    finally:
        close = getattr(answer, "close", None)
        if close is not None:
            close()
    status, headers = started
    response = HttpResponse(body, status=int(status.split()[0]))
    for name, value in headers:
        if name.lower() not in HOP_BY_HOP:
            response[name] = value
    return response


def _wsgi_text(path: str) -> str:
    """A path as WSGI carries it: its UTF-8 bytes, as latin-1 text."""
    return path.encode("utf-8").decode("latin-1")
