"""Prometheus metrics of one collector, in a registry of its own (so tests can build several)."""

from prometheus_client import CollectorRegistry, Counter, Gauge


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
            "malformed, unsupported-version, topic, store-error.",
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
        self.store_errors = Counter(
            "hezo_store_errors",
            "Failed attempts to store a message (each is retried; after 5 the message is kept as rejected).",
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "hezo_ingest_queue_depth",
            "Messages received from the broker and not yet written.",
            registry=self.registry,
        )
