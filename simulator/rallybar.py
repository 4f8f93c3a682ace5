"""A Rally Bar's local admin page (CollabOS "Local Network Access"): HTTPS with a self-signed certificate.

Power off closes the listening socket (new connections are refused) and drops open connections;
power on listens again on the same address and port. ``serve_certificate(expires_in=...)`` presents the same
certificate (same name and key, so a pinning client still trusts it) with other dates: near expiry or
expired.
"""

import datetime
import http.server
import logging
import ssl
import threading
from pathlib import Path
from typing import Any

from simulator.certs import reissue, write_self_signed
from simulator.errors import SimulatorError
from simulator.net import PowerSwitch, TlsLoopbackServer, loopback_family, url_host

log = logging.getLogger(__name__)

COMMON_NAME = "Logi Rally Bar"

LOGIN_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Logi Rally Bar</title></head>
<body>
<!-- hezo simulator: a stand-in for the CollabOS local admin login page, not a real device -->
<h1>Logi Rally Bar</h1>
<p>Simulated device (hezo simulator). Sign in to the local admin page.</p>
<form method="post" action="/login">
<label>Username <input name="username" value="admin" readonly></label>
<label>Password <input name="password" type="password"></label>
<button type="submit">Sign in</button>
</form>
</body>
</html>
"""

# How long an idle or half-open client may hold a connection thread.
CLIENT_TIMEOUT = 30.0


class _AdminPageHandler(http.server.BaseHTTPRequestHandler):
    server: "_AdminPageServer"
    server_version = "CollabOS-sim"
    sys_version = ""
    timeout = CLIENT_TIMEOUT

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def _answer(self, head: bool) -> None:
        delay = self.server.device.slow_seconds
        if delay > 0 and self.server.device.wait_powered_off(delay):
            self.close_connection = True
            return
        if self.path.split("?", 1)[0] != "/":
            body = b"not found\n"
            self.send_response(404)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
        else:
            body = LOGIN_PAGE.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the http.server signature
        log.debug("rally bar admin page: %s", format % args)


class _AdminPageServer(TlsLoopbackServer):
    label = "admin page"
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], device: "RallyBarAdmin") -> None:
        self.device = device
        super().__init__(address, _AdminPageHandler, lambda: device.tls_context)
        self.client_timeout = CLIENT_TIMEOUT


class RallyBarAdmin:
    """The HTTPS admin page of one simulated Rally Bar.

    ``port`` 0 picks a free port at the first power on; later power ons reuse it.
    """

    def __init__(
        self, state_dir: Path, host: str = "127.0.0.1", port: int = 0, cert_days: float = 365
    ) -> None:
        loopback_family(host)  # refuse a non-loopback host before anything else
        self.host = host
        self.port = port
        self.cert_file = state_dir / "rally-bar-cert.pem"
        self.key_file = state_dir / "rally-bar-key.pem"
        self.slow_seconds = 0.0
        self.cert_days = cert_days
        self._state_dir = state_dir
        self._power = PowerSwitch("rally-bar-https")
        self._lock = threading.Lock()
        self._context: ssl.SSLContext | None = None
        self.cert_expires_in: datetime.timedelta | None = None  # None: the certificate valid for a year

    @property
    def tls_context(self) -> ssl.SSLContext:
        if self._context is None:
            raise SimulatorError("the Rally Bar admin page has no certificate yet: power it on first")
        return self._context

    @property
    def powered(self) -> bool:
        return self._power.on

    @property
    def url(self) -> str:
        return f"https://{url_host(self.host)}:{self.port}/"

    def _ensure_certificate(self) -> None:
        if self._context is not None:
            return
        self._state_dir.mkdir(parents=True, exist_ok=True)
        ips = ["127.0.0.1"] if self.host in ("127.0.0.1", "localhost") else ["127.0.0.1", self.host]
        write_self_signed(
            self.cert_file,
            self.key_file,
            common_name=COMMON_NAME,
            ip_addresses=ips,
            dns_names=["localhost"],
            days=self.cert_days,
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        self._context = context

    def serve_certificate(self, expires_in: datetime.timedelta | None) -> None:
        """Present the certificate re-dated to expire ``expires_in`` from now (negative: expired); None: the
        original. New connections get it at once."""
        with self._lock:
            self._ensure_certificate()
            cert_file = self.cert_file
            if expires_in is not None:
                now = datetime.datetime.now(datetime.UTC)
                cert_file = self._state_dir / "rally-bar-cert-redated.pem"
                not_after = now + expires_in
                not_before = min(now, not_after) - datetime.timedelta(days=365)
                reissue(self.cert_file, self.key_file, cert_file, not_before=not_before, not_after=not_after)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert_file, self.key_file)
            self._context = context
            self.cert_expires_in = expires_in

    def power_on(self) -> None:
        """Listen (again) on the address and port; a no-op when already on."""

        def listen() -> _AdminPageServer:
            with self._lock:
                self._ensure_certificate()
            try:
                server = _AdminPageServer((self.host, self.port), self)
            except OSError as exc:
                raise SimulatorError(
                    f"cannot listen on {self.host} port {self.port}: {exc.strerror}"
                ) from exc
            self.port = int(server.server_address[1])
            return server

        if self._power.power_on(listen):
            log.info("rally-bar admin page listening on %s", self.url)

    def power_off(self) -> None:
        """Stop listening and drop open connections; a no-op when already off."""
        if self._power.power_off():
            log.info("rally-bar admin page powered off")

    def wait_powered_off(self, seconds: float) -> bool:
        """Wait up to ``seconds``; True when the device was powered off meanwhile."""
        return self._power.wait_off(seconds)
