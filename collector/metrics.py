"""Prometheus metrics of one collector, in a registry of its own (so tests can build several)."""

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """The counters ingest and the incident engine update, and /metrics exposes."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
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
            "Messages received again with an identity (site, agent, boot, seq) already stored, and ignored.",
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
