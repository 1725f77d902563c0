"""The web server: the dashboard (``/``), the REST API (``/api/v1``) and
Prometheus metrics (``/metrics``) as one ASGI app, mountable in a user's own
FastAPI or Starlette app, and the ``tarefa dashboard`` command's server.

Security: credentials come from the environment, as a bearer token
(``TAREFA_DASHBOARD_TOKEN``) or basic auth (``TAREFA_DASHBOARD_USER`` and
``TAREFA_DASHBOARD_PASSWORD``). With credentials set, every request but the
health check needs them. Whatever the credentials, a state-changing request
(POST, PUT, PATCH, DELETE) that a browser sends from another site is
refused: a page elsewhere must not be able to retry or purge jobs with the
operator's cookies or cached basic auth. The server binds 127.0.0.1 unless
told otherwise, and refuses any other address without credentials unless
``insecure``. Before all that, a request whose ``Host`` header names another
server than this one (localhost, 127.0.0.1, [::1], the bound address and
``allowed_hosts``) is refused with 400, reads included: a page of a site
whose name points at 127.0.0.1 (DNS rebinding) must not use the dashboard.
"""

from __future__ import annotations

import base64
import hmac
import os
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from ..app import App
from ..hosts import AllowedHosts
from ..metrics import metrics_registry, render
from .api import router as queues_router
from .api_tasks import router as tasks_router
from .errors import declare_only_given_errors, install_error_handlers

STATIC = Path(__file__).parent / "static"  # the dashboard: plain HTML, CSS and JS
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
OPEN_PATHS = ("/api/v1/health",)  # a load balancer checks it without credentials


@dataclass(frozen=True)
class Credentials:
    token: str | None = None
    user: str | None = None
    password: str | None = None

    @classmethod
    def from_env(cls) -> Credentials | None:
        token = os.environ.get("TAREFA_DASHBOARD_TOKEN")
        user = os.environ.get("TAREFA_DASHBOARD_USER")
        password = os.environ.get("TAREFA_DASHBOARD_PASSWORD")
        if user and not password or password and not user:
            raise ValueError("set both TAREFA_DASHBOARD_USER and TAREFA_DASHBOARD_PASSWORD")
        if not token and not user:
            return None
        return cls(token or None, user or None, password or None)

    def accept(self, authorization: str) -> bool:
        scheme, _, value = authorization.partition(" ")
        if self.token and scheme.lower() == "bearer":
            return hmac.compare_digest(value.encode(), self.token.encode())
        if self.user and scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            return hmac.compare_digest(user.encode(), self.user.encode()) & hmac.compare_digest(
                password.encode(), (self.password or "").encode()
            )
        return False

    @property
    def challenge(self) -> str:
        return 'Basic realm="tarefa"' if self.user else "Bearer"


def _cross_site(request: Request) -> bool:
    """Whether a browser sent this request from a page of another site.

    The browser says so itself in ``Sec-Fetch-Site`` (every current one sends
    it, and no page can set it): that answer holds even behind a proxy that
    rewrites ``Host``. Older browsers send only ``Origin``, checked against
    ``Host``."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site not in ("same-origin", "none")  # "none": typed, or a bookmark
    origin = request.headers.get("origin")
    if origin is None:
        return False  # not a browser's cross-origin request (curl, a service)
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:  # not a URL ("http://[" and the like): no page of this site sent it
        return True
    return origin == "null" or netloc != request.headers.get("host")


def _route_path(request: Request) -> str:
    """The request's path within this app, mounted under a path or not."""
    path: str = request.scope["path"]
    return path.removeprefix(request.scope.get("root_path", ""))


def create_app(
    app: App, credentials: Credentials | None = None, *, allowed_hosts: Iterable[str] = ()
) -> FastAPI:
    """The ASGI app serving ``app``'s queues: mount it, or run it with uvicorn.
    It answers requests for localhost, 127.0.0.1 and [::1], and for the names
    in ``allowed_hosts`` (the ones your users type; ``"*"``: any, which lets
    any web page use it through DNS rebinding unless something else checks
    the ``Host`` header)."""
    hosts = AllowedHosts(allowed_hosts)
    api = FastAPI(
        title="tarefa",
        summary="Manage tarefa's queues, jobs and workers; enqueue tasks over HTTP.",
        version=_version(),
    )
    api.state.tarefa = app
    install_error_handlers(api)
    api.include_router(queues_router)
    api.include_router(tasks_router)
    declare_only_given_errors(api)
    registry = metrics_registry(app)
    api.mount("/static", StaticFiles(directory=STATIC), name="static")

    @api.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @api.get("/metrics", tags=["metrics"], summary="Prometheus metrics", include_in_schema=False)
    def metrics() -> Response:
        body, content_type = render(registry)
        return Response(body, media_type=content_type)

    @api.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if not hosts.allows(host := request.headers.get("host")):
            return JSONResponse({"detail": hosts.refusal(host)}, status_code=400)
        if request.method not in SAFE_METHODS and _cross_site(request):
            return JSONResponse({"detail": "cross-site request refused"}, status_code=403)
        if credentials and _route_path(request) not in OPEN_PATHS:
            if not credentials.accept(request.headers.get("authorization", "")):
                return JSONResponse(
                    {"detail": "credentials required"},
                    status_code=401,
                    headers={"WWW-Authenticate": credentials.challenge},
                )
        return await call_next(request)

    return api


def _version() -> str:
    from .. import __version__

    return __version__


def check_bind(host: str, credentials: Credentials | None, insecure: bool) -> None:
    """Refuse to serve beyond this machine without credentials."""
    if host not in LOCAL_HOSTS and credentials is None and not insecure:
        raise ValueError(
            f"refusing to serve on {host} without credentials: set TAREFA_DASHBOARD_TOKEN "
            "(or TAREFA_DASHBOARD_USER and TAREFA_DASHBOARD_PASSWORD), or pass --insecure"
        )


def serve(
    app: App,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    insecure: bool = False,
    allowed_hosts: Iterable[str] = (),
) -> None:
    """Serve ``app``'s dashboard on ``host``: ``allowed_hosts`` as create_app's,
    with the bound address added."""
    import uvicorn

    credentials = Credentials.from_env()
    check_bind(host, credentials, insecure)
    web = create_app(app, credentials, allowed_hosts=[host, *allowed_hosts])
    uvicorn.run(web, host=host, port=port, log_level="info")
