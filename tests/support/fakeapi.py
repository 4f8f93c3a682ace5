"""What the fakes of outside JSON APIs share: a real HTTP server on a free loopback port
(ThreadingHTTPServer), every call kept, the vendor's answer to a missing or wrong login and to a body that
is not JSON, routes a subclass declares, and failures a test scripts ahead (``fail(429, retry_after="7")``).
"""

from __future__ import annotations

import json
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit


@dataclass
class Call:
    """One request as it arrived."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any = None


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Route = tuple[str, "re.Pattern[str]", Callable[[Call, "re.Match[str]"], Reply]]
Api = TypeVar("Api", bound="FakeApi")


class FakeApi(ABC):
    """Subclasses give ``routes()``, ``authorised(call)``, ``unauthorised()`` and ``error(status, text)``."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.calls: list[Call] = []
        self._failures: list[Reply] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._routes = self.routes()

    # -- what a subclass says ---------------------------------------------------------------------------

    @abstractmethod
    def routes(self) -> list[Route]:
        """Said by each fake."""

    @abstractmethod
    def authorised(self, call: Call) -> bool:
        """Said by each fake."""

    @abstractmethod
    def unauthorised(self) -> Reply:
        """Said by each fake."""

    @abstractmethod
    def error(self, status: int, text: str) -> Reply:
        """Said by each fake."""

    # -- what a test does -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def fail(self, status: int, *, times: int = 1, retry_after: str | None = None) -> None:
        """Answer the next ``times`` calls with ``status`` (and ``Retry-After``), as the vendor words it."""
        reply = self.error(status, {429: "Too many requests"}.get(status, "Service unavailable"))
        if retry_after is not None:
            reply.headers["Retry-After"] = retry_after
        with self.lock:
            self._failures.extend([reply] * times)

    def made(self, method: str, path: str) -> list[Call]:
        """The calls of ``method`` to paths matching ``path`` (a regular expression)."""
        with self.lock:
            return [call for call in self.calls if call.method == method and re.fullmatch(path, call.path)]

    def start(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.api = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = None

    # -- one request ------------------------------------------------------------------------------------

    def answer(self, call: Call, raw: bytes) -> Reply:
        with self.lock:
            self.calls.append(call)
            if self._failures:
                return self._failures.pop(0)
            if not self.authorised(call):
                return self.unauthorised()
            if raw:
                if not call.headers.get("content-type", "").startswith("application/json"):
                    return self.error(415, "Unsupported Media Type: send application/json")
                try:
                    call.body = json.loads(raw)
                except ValueError:
                    return self.error(400, "The request body is not valid JSON")
            for method, pattern, handler in self._routes:
                match = pattern.fullmatch(call.path)
                if match and method == call.method:
                    return handler(call, match)
            return self.error(404, f"No such resource: {call.method} {call.path}")


@contextmanager
def running(api: Api) -> Iterator[Api]:
    api.start()
    try:
        yield api
    finally:
        api.stop()


class _Handler(BaseHTTPRequestHandler):
    def _handle(self) -> None:
        api: FakeApi = self.server.api  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        query = {name: values[-1] for name, values in parse_qs(parts.query, keep_blank_values=True).items()}
        headers = {name.lower(): value for name, value in self.headers.items()}
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
        reply = api.answer(Call(self.command, parts.path, query, headers), raw)
        body = b"" if reply.body is None else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        if body:
            self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        """Quiet: the test reads ``calls``."""
