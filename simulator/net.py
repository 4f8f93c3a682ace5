"""Loopback-only listening, shared by the HTTPS admin page and the control endpoint."""

import contextlib
import http.server
import ipaddress
import logging
import socket
import ssl
import threading
from collections.abc import Callable
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


class TlsLoopbackServer(LoopbackHTTPServer):
    """A loopback HTTPS server that does each TLS handshake on its connection's thread, so a slow or failed
    handshake never blocks accept(), and can drop every open connection at once (a device losing power).
    """

    #: Seconds a client may stall a handshake or a request.
    client_timeout = 30.0

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[http.server.BaseHTTPRequestHandler],
        tls_context: Callable[[], ssl.SSLContext],
    ) -> None:
        self._tls_context = tls_context
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, handler)

    def handshake_failed(self, client_address: Any, error: Exception) -> None:
        """A client whose handshake failed (no client certificate, a foreign one, a plain-HTTP client)."""

    def finish_request(self, request: Any, client_address: Any) -> None:
        raw: socket.socket = request
        self._track(raw)
        try:
            raw.settimeout(self.client_timeout)
            try:
                tls = self._tls_context().wrap_socket(raw, server_side=True)
            except (OSError, ValueError) as exc:
                self.handshake_failed(client_address, exc)
                return
            self._track(tls)
            try:
                super().finish_request(tls, client_address)
            except OSError:
                pass  # a client that went away, or a connection dropped by power off
            finally:
                self._untrack(tls)
                with contextlib.suppress(OSError):
                    tls.close()
        finally:
            self._untrack(raw)
            with contextlib.suppress(OSError):
                raw.close()

    def drop_connections(self) -> None:
        with self._open_lock:
            open_now = list(self._open)
        for sock in open_now:
            # The plain socket shutdown: it wakes a thread blocked in a TLS read without touching TLS state.
            with contextlib.suppress(OSError, ValueError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def _track(self, sock: socket.socket) -> None:
        with self._open_lock:
            self._open.add(sock)

    def _untrack(self, sock: socket.socket) -> None:
        with self._open_lock:
            self._open.discard(sock)


def serve_in_thread(server: TlsLoopbackServer, name: str) -> threading.Thread:
    """Serve ``server`` on a daemon thread of its own (a simulated device's power on)."""
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name=name, daemon=True
    )
    thread.start()
    return thread


def stop_serving(server: TlsLoopbackServer, thread: threading.Thread | None) -> None:
    """Stop listening, drop open connections and wait for the serving thread (a simulated power off)."""
    server.shutdown()
    server.server_close()
    server.drop_connections()
    if thread is not None:
        thread.join()


class PowerSwitch:
    """A simulated device's server, switched on and off: on, it serves on a thread of its own; off, it stops
    listening and drops every open connection, as a device losing power would. Each switch is a no-op when the
    device is in that state already; ``wait_off`` lets a slow answer end early when the power goes."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._server: TlsLoopbackServer | None = None
        self._thread: threading.Thread | None = None
        self._off = threading.Event()

    @property
    def on(self) -> bool:
        return self._server is not None

    def power_on(self, listen: Callable[[], TlsLoopbackServer]) -> bool:
        """Serve what ``listen()`` makes (bound, not serving yet); False, making nothing, when already on."""
        with self._lock:
            if self._server is not None:
                return False
            server = listen()
            self._off.clear()
            self._server = server
            self._thread = serve_in_thread(server, self._name)
            return True

    def power_off(self) -> bool:
        """Stop serving; False when already off."""
        with self._lock:
            server, thread = self._server, self._thread
            if server is None:
                return False
            self._server = self._thread = None
            self._off.set()
            stop_serving(server, thread)
            return True

    def wait_off(self, seconds: float) -> bool:
        """Wait up to ``seconds``; True when the device was powered off meanwhile."""
        return self._off.wait(seconds)
