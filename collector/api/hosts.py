"""The Host allow-list (``web.allowed_hosts``), and the warning for a web server reachable without TLS.

A request naming a host the collector was not told it is called by answers 400 before anything else runs:
a DNS-rebinding page, or a proxy that forwards whatever it gets, cannot reach the API under a name of its
choosing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from collector.api.errors import answer
from collector.config import WebConfig


def host_name(header: str) -> str:
    """The name in a Host header without its port: ``[::1]:8080`` is ``::1``, ``Hezo.Lan:80`` ``hezo.lan``."""
    if header.startswith("["):
        return header[1:].partition("]")[0].lower()
    if header.count(":") == 1:
        header = header.partition(":")[0]
    return header.lower()


def allowed(name: str, patterns: Iterable[str]) -> bool:
    """Whether ``name`` is one of ``patterns`` (a ``*.example.net`` pattern takes its subdomains)."""
    for pattern in patterns:
        if pattern.startswith("*.") and name.endswith(pattern[1:]) and len(name) > len(pattern) - 1:
            return True
        if name == pattern:
            return True
    return False


class AllowedHosts:
    """ASGI middleware: a 400 ``{"error": "bad-request"}`` for a Host header not in the allow-list."""

    def __init__(self, app: ASGIApp, names: Iterable[str]) -> None:
        self.app = app
        self.names = tuple(names)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in {"http", "websocket"}:
            name = host_name(Headers(scope=scope).get("host", ""))
            if not allowed(name, self.names):
                detail = f"host {name[:100]!r} is not one this collector answers to (web.allowed_hosts)"
                await answer(400, "bad-request", detail)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(web: WebConfig) -> str | None:
    """What to say at start-up when the web server listens beyond loopback with no TLS in front; else None."""
    if is_loopback(web.host) or web.https:
        return None
    return (
        f"web.host {web.host} is not a loopback address and web.https is off: the page and the API are "
        "served in plain HTTP to the network, so passwords, session cookies and API tokens cross it in "
        f"clear. Keep web.host on 127.0.0.1 and put a TLS reverse proxy in front (nginx, Caddy: forward to "
        f"127.0.0.1:{web.port} with X-Forwarded-For and X-Forwarded-Proto), set web.https: true and add its "
        "name to web.allowed_hosts (docs/security.md)"
    )
