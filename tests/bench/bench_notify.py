"""How fast the outbox reaches a sink: entries/s to a local webhook receiver, and from ticket opened to
notification received (p50, p99), next to bare HTTP POSTs to the same receiver.

Run: python -m tests.bench.bench_notify [--tickets 2000] [--store sqlite|postgresql]

A real dispatcher (its threads, the store, the webhook sink) delivers the openings of ``--tickets`` tickets
opened one after another while it runs. The reference is one ``requests.Session`` posting the same number of
bodies of the same size to the same receiver, one at a time, as the sink does.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from collector import tickets
from collector.config import CollectorConfig
from collector.notify.dispatcher import Dispatcher
from collector.sla.terms import SlaContext
from tests.support.collector import migrated_engine
from tests.support.postgres import postgres_schema


class Timing(ThreadingHTTPServer):
    """A receiver that notes when each request arrived, by its ticket number."""

    arrivals: dict[str, float]
    lock: threading.Lock


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        server: Timing = self.server  # type: ignore[assignment]
        number = self.headers.get("X-Hezo-Ticket-Number") or _number(body)
        with server.lock:
            server.arrivals[number] = time.perf_counter()
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet."""


def _number(body: bytes) -> str:
    marker = b'"number": "'
    start = body.find(marker) + len(marker)
    return body[start : body.find(b'"', start)].decode()


@contextmanager
def receiver() -> Iterator[Timing]:
    server = Timing(("127.0.0.1", 0), _Handler)
    server.arrivals, server.lock = {}, threading.Lock()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def store(kind: str) -> Iterator[Engine]:
    if kind == "postgresql":
        with postgres_schema() as engine:
            yield engine
        return
    with tempfile.TemporaryDirectory() as tmp:
        engine = migrated_engine(Path(tmp))
        yield engine
        engine.dispose()


def through_the_outbox(kind: str, count: int) -> tuple[float, list[float]]:
    """Entries/s, and each ticket's seconds from opened to received."""
    with receiver() as server, store(kind) as engine:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        settings = CollectorConfig.model_validate(
            {"notify": {"sinks": {"desk": {"type": "webhook", "url": url}}, "routes": [{"sinks": ["desk"]}]}}
        )
        notify = Dispatcher(engine, settings, SlaContext.from_config(settings))
        notify.start()
        opened: dict[str, float] = {}
        started = time.perf_counter()
        try:
            for index in range(count):
                now = datetime.now(UTC)
                with engine.begin() as conn:
                    number = tickets.open_ticket(
                        conn,
                        tickets.Subject("hq", "room-1", f"device-{index}"),
                        priority="critical",
                        cause="device-down",
                        opened_at=now,
                        response_due=now + timedelta(hours=1),
                        evidence=None,
                        text="down",
                    )
                opened[number] = time.perf_counter()
            while len(server.arrivals) < count:
                time.sleep(0.05)
            elapsed = time.perf_counter() - started
        finally:
            notify.stop()
        latencies = [server.arrivals[number] - at for number, at in opened.items()]
        return count / elapsed, latencies


def bare_posts(count: int, size: int) -> float:
    """POSTs/s of one requests.Session to the same kind of receiver."""
    import requests

    body = b"x" * size
    with receiver() as server, requests.Session() as session:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        started = time.perf_counter()
        for index in range(count):
            session.post(url, data=body, headers={"X-Hezo-Ticket-Number": str(index)}, timeout=10)
        return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=2000)
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    rate, latencies = through_the_outbox(args.store, args.tickets)
    reference = bare_posts(args.tickets, 1500)
    cuts = statistics.quantiles(latencies, n=100)
    print(f"{args.tickets} tickets opened one after another, {args.store} store, one webhook sink")
    print(f"{'':28} {'per s':>8} {'vs bare':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    print(f"{'bare POSTs (reference)':28} {reference:8.0f} {1.0:8.2f} {'':>8} {'':>8} {'':>8}")
    print(
        f"{'outbox -> webhook':28} {rate:8.0f} {rate / reference:8.2f} "
        f"{cuts[49] * 1000:8.0f} {cuts[98] * 1000:8.0f} {max(latencies) * 1000:8.0f}"
    )


if __name__ == "__main__":
    main()
