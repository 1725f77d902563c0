"""Which names the dashboard and a worker's metrics port answer to: a guard
against DNS rebinding.

A page on a site whose name its owner points at 127.0.0.1 is, to the
browser, of that site: it may read and act on a server listening on this
machine without credentials. The browser sends the site's name in the
``Host`` header, so a server that answers only its own names (localhost,
127.0.0.1, [::1], the address it binds, and names the operator gives) is out
of that page's reach, for reads and changes alike.

Starlette's TrustedHostMiddleware does the same check, but refuses every
IPv6 host before Starlette 1.7 and answers a fixed "Invalid host header"
that does not say how to allow a name; the header is parsed here with the
standard library's URL parser instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
ANY = "*"


def host_of(header: str | None) -> str | None:
    """The host a ``Host`` header names ("localhost:8000" -> "localhost",
    "[::1]:8000" -> "::1"), lowercased; None when it is missing or is not a
    host with an optional port."""
    if not header or "@" in header:
        return None
    try:
        parts = urlsplit("//" + header)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        return None
    if parts.netloc != header or not parts.hostname:
        return None  # a path, query or fragment came with it
    return parts.hostname


def _name(name: str) -> str:
    """An allowed name as host_of() gives it: "::1" and "[::1]" alike."""
    if "*" in name:
        raise ValueError(f"'*' alone allows any name; no pattern is supported: {name!r}")
    bracketed = f"[{name}]" if name.count(":") > 1 and not name.startswith("[") else name
    host = host_of(bracketed)
    if host is None or urlsplit("//" + bracketed).port is not None:
        raise ValueError(f"not a host name (with no port): {name!r}")
    return host


class AllowedHosts:
    """The names a server answers to: the local ones, the address it binds
    and ``names``; ``"*"`` among them allows any (unsafe: see above)."""

    def __init__(self, names: Iterable[str] = (), *, option: str = "--allowed-host"):
        names = list(names)
        self.any = ANY in names
        self.names = {_name(n) for n in (*LOCAL_NAMES, *names) if n != ANY}
        self.option = option  # how an operator allows a name, for the refusal

    def allows(self, header: str | None) -> bool:
        return self.any or host_of(header) in self.names

    def refusal(self, header: str | None) -> str:
        """Why a request with this ``Host`` header is refused, and what to do."""
        named = "no Host header" if header is None else f"the Host {header!r}"
        return (
            f"{named} is not a name this server answers to (a page on another site could "
            f"reach it through DNS rebinding): open it as localhost, 127.0.0.1 or [::1], "
            f"or allow the name with {self.option}"
        )
