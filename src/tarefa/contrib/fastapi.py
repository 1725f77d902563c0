"""tarefa in a FastAPI (or Starlette) app.

``mount_dashboard(api, app, "/admin/queues", dependencies=[Depends(staff)])``
serves tarefa's dashboard, REST API and metrics under a path of ``api``
behind the app's own auth dependencies: every request under the path runs
them first, as the app's own routes do, and only ``{path}/api/v1/health``
(a load balancer's check) stays open. A plain ``api.mount`` of
``create_app`` could not run them: FastAPI's dependencies belong to routes,
and a mounted app has none. So the path gets two routes of ``api`` that
hand each request, unread, to the dashboard's app (``_Forwarded``).

``FastAPI(lifespan=lifespan(app))`` closes tarefa's Redis connections when
the web app stops (wrapping the app's own lifespan, if it has one).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.params import Depends
from fastapi.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..app import App
from ..web.server import OPEN_PATHS, Credentials, create_app

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[Any]]


def mount_dashboard(
    api: FastAPI,
    app: App,
    path: str = "/tarefa",
    *,
    dependencies: Sequence[Depends] = (),
    allowed_hosts: Iterable[str] = ("*",),
    insecure: bool = False,
) -> None:
    """Serve ``app``'s dashboard, REST API and metrics at ``path`` of ``api``,
    each request running ``dependencies`` (``Depends(...)``, the app's auth)
    first, but for ``{path}/api/v1/health``.

    Nothing would guard a dashboard mounted with no dependencies and no
    ``TAREFA_DASHBOARD_TOKEN`` (or ``_USER`` and ``_PASSWORD``): that raises
    ValueError unless ``insecure`` (a dashboard only a private network
    reaches). ``allowed_hosts``: the ``Host`` names answered, by default any
    (``api``'s own server and proxy decide which names reach it; see
    ``create_app``). A state-changing request a browser sends from another
    site is refused, as by ``tarefa dashboard``."""
    prefix = _prefix(path)
    dependencies = list(dependencies)
    for dependency in dependencies:
        if not isinstance(dependency, Depends):
            raise TypeError(f"dependencies are Depends(...), not {dependency!r}")
    credentials = Credentials.from_env()
    if not dependencies and credentials is None and not insecure:
        raise ValueError(
            f"nothing would guard tarefa's dashboard at {prefix}: pass "
            "dependencies=[Depends(your_auth)], set TAREFA_DASHBOARD_TOKEN (or "
            "TAREFA_DASHBOARD_USER and TAREFA_DASHBOARD_PASSWORD), or insecure=True"
        )
    web = create_app(app, credentials, allowed_hosts=allowed_hosts)

    async def forward(request: Request) -> Response:
        return _Forwarded(web, prefix)

    async def add_slash(request: Request) -> Response:
        # The dashboard's page names its files and the API relative to itself.
        return RedirectResponse(f"{request.scope.get('root_path', '')}{prefix}/")

    for open_path in OPEN_PATHS:
        api.add_api_route(prefix + open_path, forward, methods=["GET"], include_in_schema=False)
    api.add_api_route(prefix, add_slash, methods=["GET"], include_in_schema=False)
    api.add_api_route(
        prefix + "/{rest:path}",
        forward,
        methods=METHODS,
        dependencies=dependencies,
        include_in_schema=False,
    )


def lifespan(app: App, wrapped: Lifespan | None = None) -> Lifespan:
    """A FastAPI ``lifespan`` that closes ``app``'s Redis connections as the
    web app stops, around ``wrapped`` (the app's own lifespan), if given."""

    @asynccontextmanager
    async def run(api: FastAPI) -> AsyncIterator[Any]:
        try:
            if wrapped is None:
                yield None
            else:
                async with wrapped(api) as state:
                    yield state
        finally:
            await app.aclose()

    return run


def _prefix(path: str) -> str:
    if not isinstance(path, str):
        raise TypeError(f"path must be a str, not {type(path).__name__}")
    prefix = path.rstrip("/")
    if not prefix.startswith("/") or "{" in prefix or "}" in prefix:
        raise ValueError(f"path must start with / and name no parameters: {path!r}")
    return prefix


class _Forwarded(Response):
    """The dashboard's own answer to the request, under ``prefix``: its app
    sees the prefix as its root path, as a mounted app would."""

    def __init__(self, web: ASGIApp, prefix: str) -> None:
        super().__init__()
        self.web, self.prefix = web, prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        outer = ("route", "endpoint", "path_params")  # api's routing, not the dashboard's
        inner = {key: value for key, value in scope.items() if key not in outer}
        inner["root_path"] = scope.get("root_path", "") + self.prefix
        await self.web(inner, receive, send)
