"""Loopback-only listening, shared by the HTTPS admin page and the control endpoint."""

import http.server
import ipaddress
import logging
import socket
from typing import Any

from simulator.errors import SimulatorError

log = logging.getLogger(__name__)


def loopback_family(host: str) -> socket.AddressFamily:
    """The address family for a loopback ``host``; anything else is refused.

    The simulator has no authentication: it must never be reachable from another machine.
    """
    if host == "localhost":
        return socket.AF_INET
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise SimulatorError(
            f"host {host!r} is not an IP address: give a loopback address such as 127.0.0.1 or ::1"
        ) from None
    if not address.is_loopback:
        raise SimulatorError(
            f"refusing to listen on {host}: the simulator has no authentication and listens only on "
            "a loopback address (127.0.0.0/8 or ::1)"
        )
    return socket.AF_INET6 if address.version == 6 else socket.AF_INET


def url_host(host: str) -> str:
    """``host`` as it goes in a URL (IPv6 in brackets)."""
    return f"[{host}]" if ":" in host else host


def free_port(host: str = "127.0.0.1", preferred: int = 0) -> int:
    """``preferred`` if it is free on ``host``, else a port the kernel says is free now."""
    for port in (preferred, 0) if preferred else (0,):
        with socket.socket(loopback_family(host)) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise SimulatorError(f"no free port on {host}")


def listening(host: str, port: int) -> bool:
    """True if something accepts TCP connections on ``host``:``port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class LoopbackHTTPServer(http.server.ThreadingHTTPServer):
    """A threaded HTTP server that binds only a loopback address and logs failed connections quietly."""

    daemon_threads = True
    block_on_close = False
    label = "simulator"

    def __init__(self, address: tuple[str, int], handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        self.address_family = loopback_family(address[0])
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver calls this inside its except block, so the exception is at hand.
        log.debug("%s: connection from %s failed", self.label, client_address, exc_info=True)  # noqa: LOG014
