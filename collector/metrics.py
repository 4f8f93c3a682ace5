"""Prometheus metrics of one collector, in registries of its own (so tests can build several): ``registry``
(``/metrics``) holds the counters ingest, the incident engine and the outbox update, and the fleet's totals
and the tickets read from the store at scrape time; ``fleet_registry`` (``/metrics/fleet``) holds a series per
device and per agent, also read at scrape time (``StoreCollector``; docs/metrics.md lists them all). The
split keeps ``/metrics`` cheap whatever the fleet's size: a per-device exposition of 100,000 devices is a
million series, seconds of rendering."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric


class Metrics:
    """The counters ingest and the incident engine update, and /metrics exposes."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.fleet_registry = CollectorRegistry()
        self.ingested = Counter(
            "hezo_messages_ingested",
            "Messages accepted, by envelope kind.",
            ["kind"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "hezo_messages_rejected",
            "Messages refused and kept for inspection, by reason: "
            "malformed, unsupported-version, topic, implausible, not-enrolled, store-error.",
            ["reason"],
            registry=self.registry,
        )
        self.duplicates = Counter(
            "hezo_messages_duplicate",
            "Messages received again, and ignored: an identity (site, agent, boot, seq) already stored, or a "
            "retained or redelivered copy of a bad message already kept.",
            registry=self.registry,
        )
        self.gaps = Counter(
            "hezo_seq_gaps",
            "Gaps seen in an agent's seq (messages missing); each asks the agent to re-publish its state.",
            registry=self.registry,
        )
        self.republish_requested = Counter(
            "hezo_republish_requested",
            "Requests that an agent publish its state again, made by the default handler (no command sent).",
            registry=self.registry,
        )
        self.batch_size = Counter(
            "hezo_ingest_batches",
            "Transactions the writer committed for batches of messages.",
            registry=self.registry,
        )
        self.tickets_opened = Counter(
            "hezo_tickets_opened",
            "Tickets opened by the incident engine, by priority.",
            ["priority"],
            registry=self.registry,
        )
        self.evaluations = Counter(
            "hezo_incident_evaluations",
            "Evaluations of the incident rules completed.",
            registry=self.registry,
        )
        self.writer_busy = Counter(
            "hezo_writer_busy_seconds",
            "Seconds the writer thread spent working (not waiting for work), by what: ingest (storing batches"
            " of messages) or the job's name (an incident evaluation, a prune); its rate is the share of one"
            " core the writer is busy.",
            ["work"],
            registry=self.registry,
        )
        self.devices_evaluated = Counter(
            "hezo_incident_devices_evaluated",
            "Devices the incident engine looked at (a change or a timer due), summed over evaluations.",
            registry=self.registry,
        )
        self.store_errors = Counter(
            "hezo_store_errors",
            "Failed attempts to store a message (each is retried; after 5 the message is kept as rejected).",
            registry=self.registry,
        )
        self.receiver_restarts = Counter(
            "hezo_receiver_restarts",
            "Receiver processes (the MQTT session's) that ended unasked and were started again.",
            registry=self.registry,
        )
        self.ingest_behind = Gauge(
            "hezo_ingest_behind_seconds",
            "How far behind the agents ingest is: from the envelope ts of the newest live message in the last"
            " batch stored to its commit (the agents' clock against the collector's: skew shows too).",
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "hezo_ingest_queue_depth",
            "Messages received from the broker and not yet written.",
            registry=self.registry,
        )
        self.notify_outcomes = Counter(
            "hezo_notify_attempts",
            "Delivery attempts of ticket notifications, by sink and the delivery's status after the attempt "
            "(sent, pending: to be retried, dead: given up).",
            ["sink", "status"],
            registry=self.registry,
        )
        self.notify_latency = Histogram(
            "hezo_notify_latency_seconds",
            "From a ticket event to its notification accepted by the sink.",
            ["sink"],
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600),
            registry=self.registry,
        )
        self.notify_deliveries = Gauge(
            "hezo_notify_deliveries",
            "Deliveries of ticket notifications in the store, by sink and status (pending, sent, dead).",
            ["sink", "status"],
            registry=self.registry,
        )
        self.sla_breaches = Gauge(
            "hezo_sla_breaches",
            "SLA deadlines missed, as recorded in the store, by priority and deadline "
            "(response, update, delivery, return).",
            ["priority", "deadline"],
            registry=self.registry,
        )
        self.tickets_sla = Gauge(
            "hezo_tickets_sla",
            "Tickets not closed, by SLA state (ok, warning, breached, none).",
            ["state"],
            registry=self.registry,
        )

    def watch_store(self, engine: Any, *, now: Callable[[], datetime]) -> None:
        """Expose the fleet's totals and the tickets with the counters, and each device and agent on
        ``fleet_registry`` (each a ``StoreCollector``)."""
        self.registry.register(StoreCollector(engine, now=now, read=read_summary))
        self.fleet_registry.register(StoreCollector(engine, now=now, read=read_fleet))

    def publish_sla(self, conn: Any) -> None:
        """Set the SLA gauges from the store (breaches recorded by any process count)."""
        from sqlalchemy import func, select

        from collector.store.schema import ACTIVE_STATUSES, tickets
        from collector.tickets import breach_counts

        for priority, deadline, count in breach_counts(conn):
            self.sla_breaches.labels(priority=priority, deadline=deadline).set(count)
        query = (
            select(tickets.c.sla_state, func.count())
            .where(tickets.c.status.in_(ACTIVE_STATUSES))
            .group_by(tickets.c.sla_state)
        )
        counts = dict.fromkeys(("ok", "warning", "breached", "none"), 0)
        for state, count in conn.execute(query):
            counts[state or "none"] = int(count)
        for state, count in counts.items():
            self.tickets_sla.labels(state=state).set(count)


#: How long one reading of the store serves scrapes (seconds): several Prometheus servers scraping every few
#: seconds cost one set of queries per period, not one each.
STORE_CACHE_SECONDS = 5.0
#: The device states a ``hezo_device_state`` series exists for, one per device and state.
DEVICE_STATES = ("up", "degraded", "down", "unknown")
#: At most this many checks per device are exported (one per driver): bounds the series a device can add.
MAX_CHECKS_PER_DEVICE = 8
DEVICE_LABELS = ("site", "agent", "device", "model")


class StoreCollector:
    """Gauges read from the store at scrape time by ``read``: ``read_fleet`` (each device's state and last
    check figures, each agent's last word) or ``read_summary`` (devices and agents counted by state, the
    tickets not closed and the seconds left on their running SLA deadlines).

    Cardinality is bounded by what the store holds: per device 4 state series, 3 of its own and 3 per
    driver (at most ``MAX_CHECKS_PER_DEVICE`` drivers); per agent 2; per ticket not closed at most 4
    deadlines; the counts by state, priority and status are fixed sets. One reading serves
    ``cache_seconds``.
    """

    def __init__(
        self,
        engine: Any,
        *,
        now: Callable[[], datetime],
        read: Callable[[Any, datetime], list[Metric]],
        cache_seconds: float = STORE_CACHE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._now = now
        self._read = read
        self._cache_seconds = cache_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._read_at: float | None = None
        self._families: list[Metric] = []
        #: Readings of the store made (each cached for ``cache_seconds``); what a test counts.
        self.readings = 0

    def describe(self) -> list[Metric]:
        """Nothing: the families are only known after a reading (no query when the collector registers)."""
        return []

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            clock = self._monotonic()
            if self._read_at is None or clock - self._read_at >= self._cache_seconds:
                with self._engine.connect() as conn:
                    self._families = self._read(conn, self._now())
                self._read_at = clock
                self.readings += 1
            families = list(self._families)
        yield from families


def read_fleet(conn: Any, now: datetime) -> list[Metric]:
    """The series of every device and agent, as of ``now`` (``/metrics/fleet``)."""
    return [*_device_families(conn, now), *_agent_families(conn, now)]


def read_summary(conn: Any, now: datetime) -> list[Metric]:
    """Devices and agents counted, and the tickets not closed, as of ``now`` (``/metrics``)."""
    return [*_fleet_counts(conn), *_ticket_families(conn, now)]


def _fleet_counts(conn: Any) -> list[Metric]:
    from sqlalchemy import func, select

    from collector.store.schema import agents, devices

    by_state = GaugeMetricFamily(
        "hezo_devices", "Devices not retired, by state (up, degraded, down, unknown).", labels=("state",)
    )
    counted = dict.fromkeys(DEVICE_STATES, 0)
    query = (
        select(devices.c.state, func.count()).where(devices.c.retired_at.is_(None)).group_by(devices.c.state)
    )
    for state, count in conn.execute(query):
        counted[state if state in DEVICE_STATES else "unknown"] += int(count)
    for state, count in counted.items():
        by_state.add_metric([state], float(count))
    online = GaugeMetricFamily(
        "hezo_agents", "Agents known, by whether their birth stands (online) or not.", labels=("status",)
    )
    counts = {"online": 0, "offline": 0}
    for is_online, count in conn.execute(select(agents.c.online, func.count()).group_by(agents.c.online)):
        counts["online" if is_online else "offline"] += int(count)
    for status, count in counts.items():
        online.add_metric([status], float(count))
    return [by_state, online]


def _age(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else max(0.0, (now - then).total_seconds())


def _device_families(conn: Any, now: datetime) -> list[Metric]:
    from sqlalchemy import select

    from collector.store.schema import devices

    up = GaugeMetricFamily(
        "hezo_device_up",
        "1 when the device is up or degraded, 0 when down or not yet known.",
        labels=DEVICE_LABELS,
    )
    state = GaugeMetricFamily(
        "hezo_device_state",
        "1 for the device's current state (up, degraded, down, unknown), 0 for the others.",
        labels=(*DEVICE_LABELS, "state"),
    )
    state_age = GaugeMetricFamily(
        "hezo_device_state_age_seconds",
        "Seconds since the device entered its current state.",
        labels=DEVICE_LABELS,
    )
    report_age = GaugeMetricFamily(
        "hezo_device_report_age_seconds",
        "Seconds since the agent's last state report of the device was taken.",
        labels=DEVICE_LABELS,
    )
    check_ok = GaugeMetricFamily(
        "hezo_device_check_ok",
        "1 when the device's last check by this driver passed, 0 when it failed.",
        labels=(*DEVICE_LABELS, "driver"),
    )
    check_duration = GaugeMetricFamily(
        "hezo_device_check_duration_seconds",
        "How long the device's last check by this driver took.",
        labels=(*DEVICE_LABELS, "driver"),
    )
    check_age = GaugeMetricFamily(
        "hezo_device_check_age_seconds",
        "Seconds since the device's last check by this driver ran.",
        labels=(*DEVICE_LABELS, "driver"),
    )
    query = select(
        devices.c.site,
        devices.c.agent,
        devices.c.device,
        devices.c.model,
        devices.c.state,
        devices.c.state_since,
        devices.c.state_ts,
        devices.c.checks,
    ).where(devices.c.retired_at.is_(None))
    for row in conn.execute(query):
        labels = [row.site, row.agent, row.device, row.model or ""]
        current = row.state if row.state in DEVICE_STATES else "unknown"
        up.add_metric(labels, 1.0 if current in {"up", "degraded"} else 0.0)
        for name in DEVICE_STATES:
            state.add_metric([*labels, name], 1.0 if name == current else 0.0)
        for family, then in ((state_age, row.state_since), (report_age, row.state_ts)):
            age = _age(now, then)
            if age is not None:
                family.add_metric(labels, age)
        for driver, check in _checks_by_driver(row.checks).items():
            with_driver = [*labels, driver]
            check_ok.add_metric(with_driver, 1.0 if check.get("ok") is True else 0.0)
            duration = check.get("duration_ms")
            if isinstance(duration, int | float) and not isinstance(duration, bool):
                check_duration.add_metric(with_driver, float(duration) / 1000.0)
            ran = _parse_ts(check.get("ts"))
            age = _age(now, ran)
            if age is not None:
                check_age.add_metric(with_driver, age)
    return [up, state, state_age, report_age, check_ok, check_duration, check_age]


def _checks_by_driver(checks: object) -> dict[str, dict[str, Any]]:
    """The first check of each driver in a stored ``checks`` list, at most ``MAX_CHECKS_PER_DEVICE``."""
    found: dict[str, dict[str, Any]] = {}
    if not isinstance(checks, list):
        return found
    for check in checks:
        if not isinstance(check, dict) or not isinstance(check.get("driver"), str):
            continue
        if check["driver"] not in found and len(found) < MAX_CHECKS_PER_DEVICE:
            found[check["driver"]] = check
    return found


def _parse_ts(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _agent_families(conn: Any, now: datetime) -> list[Metric]:
    from sqlalchemy import select

    from collector.store.schema import agents

    online = GaugeMetricFamily(
        "hezo_agent_online",
        "1 while the agent's birth stands, 0 after its death or will.",
        labels=("site", "agent"),
    )
    seen = GaugeMetricFamily(
        "hezo_agent_last_seen_age_seconds",
        "Seconds since the collector last heard from the agent.",
        labels=("site", "agent"),
    )
    for row in conn.execute(select(agents.c.site, agents.c.agent, agents.c.online, agents.c.last_seen)):
        online.add_metric([row.site, row.agent], 1.0 if row.online else 0.0)
        age = _age(now, row.last_seen)
        if age is not None:
            seen.add_metric([row.site, row.agent], age)
    return [online, seen]


def _ticket_families(conn: Any, now: datetime) -> list[Metric]:
    from sqlalchemy import func, select

    from collector.sla.terms import Deadlines, TicketTimes, running
    from collector.store.schema import ACTIVE_STATUSES, tickets

    counts = GaugeMetricFamily(
        "hezo_tickets_open", "Tickets not closed, by priority and status.", labels=("priority", "status")
    )
    query = (
        select(tickets.c.priority, tickets.c.status, func.count())
        .where(tickets.c.status.in_(ACTIVE_STATUSES))
        .group_by(tickets.c.priority, tickets.c.status)
    )
    for priority, status, count in conn.execute(query):
        counts.add_metric([priority, status], float(count))
    left = GaugeMetricFamily(
        "hezo_ticket_sla_seconds_left",
        "Seconds left before each running SLA deadline of a ticket not closed (negative once missed).",
        labels=("ticket", "site", "device", "priority", "deadline"),
    )
    for row in conn.execute(select(tickets).where(tickets.c.status.in_(ACTIVE_STATUSES))):
        due = Deadlines(row.response_due, row.update_due, row.delivery_due, row.return_due)
        for deadline, when in running(TicketTimes.of_row(row), due).items():
            labels = [row.number or str(row.id), row.site, row.device, row.priority, deadline]
            left.add_metric(labels, (when - now).total_seconds())
    return [counts, left]
