"""The control endpoint: plain HTTP on loopback, JSON in and out.

``GET /devices``, ``GET /devices/{id}``, ``POST /devices/{id}/power`` ``{"on": false}`` and
``POST /devices/{id}/fault`` ``{"name": "audio-lost"}``. Errors answer 4xx with ``{"error": "..."}``.
"""

import http.server
import json
import logging
import threading
from typing import Any, Protocol

from simulator.errors import SimulatorError, UnknownDeviceError
from simulator.net import LoopbackHTTPServer, loopback_family, url_host

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024


class Site(Protocol):
    """What the control endpoint drives."""

    def devices(self) -> list[dict[str, Any]]: ...

    def device(self, device_id: str) -> dict[str, Any]: ...

    def power(self, device_id: str, on: bool) -> dict[str, Any]: ...

    def fault(self, device_id: str, name: str, seconds: float | None = None) -> dict[str, Any]: ...


class BadRequestError(SimulatorError):
    """A request the control endpoint answers with a 4xx status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _ControlHandler(http.server.BaseHTTPRequestHandler):
    server: "_ControlHTTPServer"
    server_version = "hezo-sim"
    sys_version = ""
    timeout = 30.0

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        try:
            status, body = 200, self._route(method)
        except BadRequestError as exc:
            status, body = exc.status, {"error": str(exc)}
        except UnknownDeviceError as exc:
            status, body = 404, {"error": str(exc)}
        except SimulatorError as exc:
            status, body = 400, {"error": str(exc)}
        except Exception as exc:  # the endpoint outlives any one bad request
            log.exception("control endpoint: %s %s failed", method, self.path)
            status, body = 500, {"error": f"internal error: {exc}"}
        self._send_json(status, body)

    def _route(self, method: str) -> Any:
        parts = [p for p in self.path.split("?", 1)[0].split("/") if p]
        site = self.server.site
        if not parts or parts[0] != "devices" or len(parts) > 3:
            raise BadRequestError(404, f"no such endpoint {self.path!r}: try GET /devices")
        if len(parts) == 1:
            self._require(method, "GET")
            return site.devices()
        device_id = parts[1]
        if len(parts) == 2:
            self._require(method, "GET")
            return site.device(device_id)
        action = parts[2]
        if action not in ("power", "fault"):
            raise BadRequestError(404, f"no such endpoint {self.path!r}: devices have /power and /fault")
        self._require(method, "POST")
        site.device(device_id)  # an unknown device is a 404 whatever the body says
        request = self._read_json()
        if action == "power":
            on = request.get("on")
            if not isinstance(on, bool):
                raise BadRequestError(400, 'power needs a JSON object {"on": true} or {"on": false}')
            return site.power(device_id, on)
        name = request.get("name")
        if not isinstance(name, str):
            raise BadRequestError(400, 'fault needs a JSON object {"name": "<fault>"}')
        seconds = request.get("seconds")
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int | float)):
            raise BadRequestError(400, f'"seconds" must be a number, not {json.dumps(seconds)}')
        return site.fault(device_id, name, None if seconds is None else float(seconds))

    def _require(self, method: str, allowed: str) -> None:
        if method != allowed:
            raise BadRequestError(405, f"{method} is not allowed on {self.path}: use {allowed}")

    def _read_json(self) -> dict[str, Any]:
        # A web page cannot send application/json to another origin without a CORS preflight, which this
        # endpoint never grants: requiring it keeps a browser tab on this machine from pulling plugs.
        if self.headers.get_content_type() != "application/json":
            raise BadRequestError(415, "send the body as Content-Type: application/json")
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            raise BadRequestError(400, "Content-Length is not a number") from None
        if length < 0:
            raise BadRequestError(400, "Content-Length is negative")
        if length > MAX_BODY:
            raise BadRequestError(413, f"the body must be at most {MAX_BODY} bytes")
        raw = self.rfile.read(length)
        try:
            value = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequestError(400, f"the body is not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise BadRequestError(400, "the body must be a JSON object")
        return value

    def _send_json(self, status: int, body: Any) -> None:
        data = (json.dumps(body, indent=2) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status >= 400:
            self.close_connection = True  # the body may not have been read
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the http.server signature
        log.debug("control endpoint: %s", format % args)


class _ControlHTTPServer(LoopbackHTTPServer):
    label = "control endpoint"

    def __init__(self, address: tuple[str, int], site: Site) -> None:
        self.site = site
        super().__init__(address, _ControlHandler)


class ControlServer:
    """Serves the control endpoint for ``site`` on a loopback ``host``; port 0 picks a free one."""

    def __init__(self, site: Site, host: str = "127.0.0.1", port: int = 0) -> None:
        loopback_family(host)
        self.site = site
        self.host = host
        self.port = port
        self._server: _ControlHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{url_host(self.host)}:{self.port}"

    def start(self) -> None:
        if self._server is not None:
            return
        try:
            server = _ControlHTTPServer((self.host, self.port), self.site)
        except OSError as exc:
            raise SimulatorError(
                f"cannot listen on {self.host} port {self.port} for the control endpoint: {exc.strerror}"
            ) from exc
        self.port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="hezo-sim-control", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join()
