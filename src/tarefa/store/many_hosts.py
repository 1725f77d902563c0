"""URLs that name several Redis hosts: ``redis+sentinel://`` and
``redis+cluster://`` (``sentinel.py``, ``cluster.py``).

``scheme://[user:password@]host:port[,host:port...][/path][?arguments]``: the
credentials are the Redis servers' own, as a ``redis://`` URL gives them (a
lone name before ``@`` is a password); ``rediss+...`` speaks TLS, with the
``ssl_*`` query arguments of a ``rediss://`` URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

_TLS_ARGUMENTS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs", "ssl_password")


@dataclass(frozen=True)
class HostsURL:
    scheme: str
    hosts: tuple[tuple[str, int], ...]
    path: str  # without its leading "/"
    username: str | None
    password: str | None
    tls: dict[str, Any] | None  # None: no TLS; else the ssl_* arguments
    arguments: dict[str, str]  # the query's other arguments


def parse(url: str, what: str = "host") -> HostsURL:
    """The parts of ``url``; ValueError saying what is wrong, ``what`` naming
    a host in it ("sentinel", "node")."""
    scheme, _, rest = url.partition("://")
    rest, _, query = rest.partition("?")
    credentials, at, where = rest.rpartition("@")
    hosts, _, path = (where if at else rest).partition("/")
    username = password = None
    if at:
        user, colon, secret = credentials.partition(":")
        username = unquote(user) if colon and user else None
        password = unquote(secret) if colon else unquote(user)
    addresses = tuple(_address(part, what) for part in hosts.split(",") if part)
    if not addresses:
        raise ValueError(f"{scheme}:// needs at least one {what} as host:port")
    arguments = dict(parse_qsl(query))
    tls = None
    if scheme.startswith("rediss+"):
        tls = {"ssl": True} | {k: arguments.pop(k) for k in _TLS_ARGUMENTS if k in arguments}
    return HostsURL(scheme, addresses, path.strip("/"), username, password, tls, arguments)


def _address(part: str, what: str) -> tuple[str, int]:
    host, colon, port = part.rpartition(":")
    if not colon or not port.isdigit():
        raise ValueError(f"a {what} is host:port, not {part!r}")
    return host.strip("[]"), int(port)
