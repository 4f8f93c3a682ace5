"""The agent's own metrics on an optional local endpoint (``metrics: {listen: 127.0.0.1:9311}``), off unless
configured.

What is counted costs a few integers whether or not the endpoint is on (``PollFigures``); prometheus-client is
imported only by ``serve``, when the endpoint is configured. A scrape reads the link and the spool on the
asyncio loop, where they live (``Snapshot``), so the HTTP thread never touches the spool's SQLite connection.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

#: How long a scrape waits for the asyncio loop to take a snapshot (seconds): a hung loop shows as a scrape
#: error, never a hung endpoint (systemd's watchdog restarts the agent meanwhile).
SNAPSHOT_TIMEOUT = 5.0


@dataclass
class PollFigures:
    """Poll durations per driver (count, sum, last) and their results, which the poller records, and the
    broker connections made, which the link's ``on_connected`` counts."""

    connections: int = 0
    count: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)

    def observe(self, driver: str, seconds: float, ok: bool) -> None:
        self.count[driver] = self.count.get(driver, 0) + 1
        self.seconds[driver] = self.seconds.get(driver, 0.0) + seconds
        self.last[driver] = seconds
        if not ok:
            self.failed[driver] = self.failed.get(driver, 0) + 1
        else:
            self.failed.setdefault(driver, 0)


@dataclass(frozen=True)
class Snapshot:
    """The agent's figures at one moment, taken on the asyncio loop."""

    spool_messages: int
    spool_bytes: int
    spool_evicted: int
    oldest_unacknowledged_seconds: float
    connections: int
    connected: bool
    polls: PollFigures


def oldest_age(payload: bytes | None, now: datetime) -> float:
    """Seconds since the envelope ``payload`` was made (0 when there is none, or it has no readable ts)."""
    if payload is None:
        return 0.0
    try:
        made = datetime.fromisoformat(str(json.loads(payload)["ts"]).replace("Z", "+00:00"))
    except (ValueError, KeyError, TypeError):
        return 0.0
    if made.tzinfo is None:
        made = made.replace(tzinfo=UTC)
    return max(0.0, (now - made).total_seconds())


class AgentCollector:
    """A prometheus-client custom collector over ``snapshot()``, which returns the figures of one scrape."""

    def __init__(self, snapshot: Callable[[], Snapshot], *, site: str, agent: str) -> None:
        self._snapshot = snapshot
        self._labels = {"site": site, "agent": agent}

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily

        figures = self._snapshot()
        names, values = list(self._labels), list(self._labels.values())

        def gauge(name: str, text: str, value: float) -> Any:
            family = GaugeMetricFamily(name, text, labels=names)
            family.add_metric(values, value)
            return family

        yield gauge(
            "hezo_agent_spool_messages",
            "Messages in the spool not yet acknowledged by the broker.",
            figures.spool_messages,
        )
        yield gauge("hezo_agent_spool_bytes", "Bytes of the messages in the spool.", figures.spool_bytes)
        yield gauge(
            "hezo_agent_publish_lag_seconds",
            "Age of the oldest message the broker has not acknowledged (0 when the spool is empty).",
            figures.oldest_unacknowledged_seconds,
        )
        yield gauge(
            "hezo_agent_broker_connected", "1 while connected to the broker.", float(figures.connected)
        )
        evicted = CounterMetricFamily(
            "hezo_agent_spool_evicted", "Telemetry messages evicted from the full spool.", labels=names
        )
        evicted.add_metric(values, figures.spool_evicted)
        yield evicted
        reconnects = CounterMetricFamily(
            "hezo_agent_broker_reconnects", "Connections to the broker after the first one.", labels=names
        )
        reconnects.add_metric(values, max(0, figures.connections - 1))
        yield reconnects
        polls = figures.polls
        with_driver = [*names, "driver"]
        durations = SummaryMetricFamily(
            "hezo_agent_poll_duration_seconds",
            "Time each check (re-checks included) took, by driver.",
            labels=with_driver,
        )
        last = GaugeMetricFamily(
            "hezo_agent_poll_last_duration_seconds",
            "How long the last check took, by driver.",
            labels=with_driver,
        )
        failed = CounterMetricFamily(
            "hezo_agent_poll_failures",
            "Checks that failed (the device or the check's source), by driver.",
            labels=with_driver,
        )
        for driver in sorted(polls.count):
            durations.add_metric([*values, driver], polls.count[driver], polls.seconds[driver])
            last.add_metric([*values, driver], polls.last[driver])
            failed.add_metric([*values, driver], polls.failed.get(driver, 0))
        yield from (durations, last, failed)


def snapshot_on(loop: asyncio.AbstractEventLoop, take: Callable[[], Snapshot]) -> Callable[[], Snapshot]:
    """``take`` run on ``loop`` from another thread, waiting at most ``SNAPSHOT_TIMEOUT``."""

    async def taken() -> Snapshot:
        return take()

    def snapshot() -> Snapshot:
        future = asyncio.run_coroutine_threadsafe(taken(), loop)
        try:
            return future.result(SNAPSHOT_TIMEOUT)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise RuntimeError(f"the agent's loop did not answer within {SNAPSHOT_TIMEOUT:.0f} s") from None

    return snapshot


def on_loopback(host: str) -> bool:
    """True for a loopback address or ``localhost``, where an endpoint without a login belongs."""
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Endpoint:
    """The HTTP server of ``/metrics`` (prometheus-client's, in a thread of its own); ``close()`` stops it."""

    def __init__(self, host: str, port: int, collector: AgentCollector) -> None:
        from prometheus_client import CollectorRegistry, start_http_server

        self.registry = CollectorRegistry()
        self.registry.register(collector)
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        self.port: int = self._server.server_port
        log.info("metrics at http://%s:%d/metrics", host, self.port)
        if not on_loopback(host):
            log.warning(
                "metrics.listen %s is not a loopback address: anyone who reaches it reads /metrics", host
            )

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
