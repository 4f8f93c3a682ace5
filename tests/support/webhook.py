"""A real HTTP receiver of a test's own for webhooks: keeps every request (path, headers, raw body), answers
with the status the test sets, and counts distinct idempotency keys as a receiver that keeps them would."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    port: int
    requests: list[Received] = field(default_factory=list)
    status: int = 200
    #: Seconds each answer takes (a slow far side, so a test can stop the sender midway).
    delay: float = 0.0
    arrived: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def keys(self) -> list[str]:
        return [request.headers.get("Idempotency-Key", "") for request in self.requests]

    def wait(self, count: int, timeout: float = 10.0) -> list[Received]:
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(f"{count} requests not within {timeout} s (got {len(self.requests)})")
            return list(self.requests)

    def wait_keys(self, count: int, timeout: float = 30.0) -> set[str]:
        """Wait for ``count`` distinct idempotency keys (a retry of a key already seen is not new)."""
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(set(self.keys())) >= count, timeout):
                raise AssertionError(f"{count} keys not within {timeout} s (got {len(set(self.keys()))})")
            return set(self.keys())


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    receiver = Receiver(server.server_address[1])
    server.receiver = receiver  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        receiver: Receiver = self.server.receiver  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if receiver.delay:
            threading.Event().wait(receiver.delay)
        status = receiver.status
        if status < 300:
            with receiver.arrived:
                receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                receiver.arrived.notify_all()
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        """Quiet: the test reads what arrived."""
