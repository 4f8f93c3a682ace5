"""The collector's tables (SQLAlchemy Core), the names stored in them, and the UTC datetime type.

The schema is owned by the Alembic migrations in ``collector/store/migrations``; the ``Table`` objects here
describe it for queries and must match the latest migration (a test compares them).

Datetimes are timezone-aware UTC on the Python side. SQLite has no time zone type and hands back naive
values, so ``UTCDateTime`` stores UTC and marks what it reads as UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

#: Ticket causes and statuses. Only ``closed`` ends a ticket; ``recovered`` keeps it open for follow-up.
CAUSE_DEVICE_DOWN = "device-down"
OPEN_STATUSES = ("open", "recovered")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store keeps timezone-aware UTC only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = MetaData()

agents = Table(
    "agents",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("agent", String(64), primary_key=True),
    Column("online", Boolean, nullable=False, default=False),
    # The order key (boot, status_seq) of the last status message applied; see docs/collector.md.
    Column("boot", String(64)),
    Column("status_seq", BigInteger),
    Column("version", String(64)),
    Column("hostname", String(255)),
    Column("will_seq", BigInteger),
    Column("last_seen", UTCDateTime),
    Column("status_changed_at", UTCDateTime),
    # Gap bookkeeping over all boots (migration 0002): seq gaps seen, and seqs still missing.
    Column("seq_gaps", BigInteger, nullable=False, server_default="0"),
    Column("seq_missing", BigInteger, nullable=False, server_default="0"),
)

devices = Table(
    "devices",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("agent", String(64), primary_key=True),
    Column("device", String(64), primary_key=True),
    Column("model", String(128)),
    Column("serial", String(128)),
    Column("name", String(255)),
    Column("room", String(255)),
    Column("contract", String(128)),
    Column("state", String(16), nullable=False, default="unknown"),
    Column("state_since", UTCDateTime),
    Column("state_reason", Text),
    Column("checks", JSON),
    Column("state_ts", UTCDateTime),
    # The order key (state_boot, state_seq) of the state message applied.
    Column("state_boot", String(64)),
    Column("state_seq", BigInteger),
    Column("down_since", UTCDateTime),
    Column("updated_at", UTCDateTime),
    Column("retired_at", UTCDateTime),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("site", String(64), nullable=False),
    Column("agent", String(64), nullable=False),
    Column("boot", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("ts", UTCDateTime, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("device", String(64)),
    Column("type", String(64), nullable=False),
    Column("body", JSON, nullable=False),
    UniqueConstraint("site", "agent", "boot", "seq", name="uq_events_identity"),
)

rejected = Table(
    "rejected",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("topic", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("reason", String(32), nullable=False),
    Column("error", Text, nullable=False),
    Column("received_at", UTCDateTime, nullable=False, index=True),
    #: SHA-256 of the payload: a retained copy delivered again is found by it, not by the payload itself.
    Column("payload_sha256", String(64)),
)
Index("ix_rejected_topic_digest", rejected.c.topic, rejected.c.payload_sha256)

#: The agents the collector takes messages from when ``ingest.enrolled_only`` is on (docs/security.md), and
#: the broker login each holds (docs/security-agents.md): the SHA-256 of its password, never the password.
enrolments = Table(
    "enrolments",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("agent", String(64), primary_key=True),
    Column("enrolled_at", UTCDateTime, nullable=False),
    Column("enrolled_by", String(128), nullable=False),
    Column("revoked_at", UTCDateTime),
    Column("revoked_by", String(128)),
    Column("credential_sha256", String(64)),
    Column("credential_at", UTCDateTime),
    Column("credential_by", String(128)),
)

tickets = Table(
    "tickets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("number", String(32), unique=True),
    Column("site", String(64), nullable=False),
    Column("agent", String(64), nullable=False),
    Column("device", String(64), nullable=False),
    Column("model", String(128)),
    Column("serial", String(128)),
    Column("contract", String(128)),
    Column("room", String(255)),
    Column("priority", String(16), nullable=False),
    Column("cause", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("response_due", UTCDateTime, nullable=False),
    Column("recovered_at", UTCDateTime),
    Column("evidence", JSON),
)

# One open ticket per device (site, agent, device) and cause, enforced by the database.
Index(
    "uq_tickets_open_per_cause",
    tickets.c.site,
    tickets.c.agent,
    tickets.c.device,
    tickets.c.cause,
    unique=True,
    sqlite_where=tickets.c.status != "closed",
    postgresql_where=tickets.c.status != "closed",
)

ticket_entries = Table(
    "ticket_entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_id", Integer, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("text", Text, nullable=False),
)


# -- remote diagnostics (collector/commands.py, collector/uploads.py; migration 0004_diagnostics) -------

commands = Table(
    "commands",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("site", String(64), nullable=False),
    Column("agent", String(64), nullable=False),
    Column("device", String(64)),
    Column("action", String(32), nullable=False),
    Column("args", JSON, nullable=False),
    Column("ticket", String(32), index=True),
    Column("requested_by", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("progress", Float),
    Column("message", Text),
    Column("result", JSON),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("upload_token_sha256", String(64)),
    Column("upload_length", BigInteger),
    Column("upload_sha256", String(64)),
)

audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("site", String(64)),
    Column("agent", String(64)),
    Column("command_id", String(64), index=True),
    Column("action", String(64)),
    Column("event", String(32), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("detail", Text, nullable=False),
)

bundles = Table(
    "bundles",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("command_id", String(64), nullable=False, unique=True),
    Column("site", String(64), nullable=False),
    Column("agent", String(64), nullable=False),
    Column("device", String(64)),
    Column("ticket", String(32), index=True),
    Column("path", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("manifest", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
)

# -- end of remote diagnostics ---------------------------------------------------------------------

# -- Incidents, SLA, contracts and maintenance (migration 0003_sla) ------------------------------------------
#
# The ticket lifecycle (docs/incidents.md): open -> responded -> confirmed -> shipped -> delivered -> returned
# -> closed, or (open|responded) -> recovered -> resolved -> closed. Every status but ``closed`` is open.
CAUSE_DEVICE_UNSTABLE = "device-unstable"
CAUSE_AGENT_SILENT = "agent-silent"
CAUSE_MANUAL = "manual"
TICKET_STATUSES = (
    "open",
    "responded",
    "confirmed",
    "shipped",
    "delivered",
    "returned",
    "recovered",
    "resolved",
    "closed",
)
ACTIVE_STATUSES = tuple(status for status in TICKET_STATUSES if status != "closed")

for _column in (
    Column("opened_by", String(128)),
    Column("summary", Text),
    Column("responded_at", UTCDateTime),
    Column("last_update_at", UTCDateTime),
    Column("confirmed_at", UTCDateTime),
    Column("delivery_accepted", UTCDateTime),
    Column("shipped_at", UTCDateTime),
    Column("delivered_at", UTCDateTime),
    Column("returned_at", UTCDateTime),
    Column("resolved_at", UTCDateTime),
    Column("closed_at", UTCDateTime),
    Column("update_due", UTCDateTime),
    Column("delivery_due", UTCDateTime),
    Column("return_due", UTCDateTime),
    Column("sla_state", String(16)),
):
    tickets.append_column(_column)
for _entry in (Column("by", String(128)), Column("sla_state", String(16)), Column("event_id", Integer)):
    ticket_entries.append_column(_entry)  # event_id: 0013_entry_events, each event noted once per ticket
Index("uq_ticket_entries_event", ticket_entries.c.ticket_id, ticket_entries.c.event_id, unique=True)

sla_breaches = Table(
    "sla_breaches",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_id", Integer, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("deadline", String(16), nullable=False),
    Column("due", UTCDateTime, nullable=False),
    Column("detected_at", UTCDateTime, nullable=False),
    Column("priority", String(16), nullable=False),
    UniqueConstraint("ticket_id", "deadline", "due", name="uq_sla_breaches_once"),
)

device_transitions = Table(
    "device_transitions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("site", String(64), nullable=False),
    Column("agent", String(64), nullable=False),
    Column("device", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("from_state", String(16), nullable=False),
    Column("to_state", String(16), nullable=False),
    Index("ix_device_transitions_device_at", "site", "agent", "device", "at"),
)

#: Devices the incident engine has to look at, and from when (migration 0010): ingest makes a device whose
#: row changed due at once (``changes`` counts those touches), the engine keeps it while one of its timers
#: runs (the confirm window, degraded-for) and forgets it when nothing about it is pending
#: (collector/store/incident_queue.py).
device_conditions = Table(
    "device_conditions",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("agent", String(64), primary_key=True),
    Column("device", String(64), primary_key=True),
    Column("condition", String(32), primary_key=True),
    Column("since", UTCDateTime, nullable=False),
)

contracts = Table(
    "contracts",
    metadata,
    Column("number", String(128), primary_key=True),
    Column("start", Date, nullable=False),
    Column("years", Integer, nullable=False),
    Column("customer", String(255)),
    Column("serials", JSON),
    Column("source", String(16), nullable=False),
)

maintenance = Table(
    "maintenance",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("site", String(64), nullable=False),
    Column("agent", String(64)),
    Column("device", String(64)),
    Column("days", String(64)),
    Column("start_time", String(5)),
    Column("end_time", String(5)),
    Column("starts_at", UTCDateTime),
    Column("ends_at", UTCDateTime),
    Column("reason", Text),
    Column("source", String(16), nullable=False),
)

# -- exactly-once ingest (migration 0002_exactly_once) ----------------------------------------------------

#: Every message stored, by its identity: the conditional insert into this table is what decides, in the
#: database, that a message is new. A message delivered twice (QoS 1, or to two collectors) is stored once.
#: ``ts`` is the envelope's, the same in every copy: on PostgreSQL the table is partitioned by it and its key
#: is (site, agent, boot, seq, ts); what retention does to it is in docs/retention.md (migration 0011).
messages = Table(
    "messages",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("agent", String(64), primary_key=True),
    Column("boot", String(64), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(16), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("ts", UTCDateTime, nullable=False),
)
# BRIN on PostgreSQL (rows come in time order; autosummarize: a block range is summarised once filled, so the
# roll-up of an hour reads that hour), a B-tree on SQLite for batched deletes.
Index("ix_messages_ts", messages.c.ts, postgresql_using="brin", postgresql_with={"autosummarize": "on"})

#: Telemetry samples: the identity of their message and their place in it. No key of their own: they are
#: inserted only by the transaction that claimed their message in ``messages``, which keeps them unique, and a
#: second key cost half of storing them on PostgreSQL (migration 0005).
samples = Table(
    "samples",
    metadata,
    Column("site", String(64), nullable=False),
    Column("agent", String(64), nullable=False),
    Column("boot", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False, autoincrement=False),
    Column("idx", Integer, nullable=False, autoincrement=False),
    Column("device", String(64), nullable=False),
    Column("metric", String(128), nullable=False),
    Column("value", Float, nullable=False),
    Column("ts", UTCDateTime, nullable=False),
)
Index("ix_samples_ts", samples.c.ts, postgresql_using="brin", postgresql_with={"autosummarize": "on"})

#: Per agent start: the highest seq received live, how many messages, and the gaps seen in seq.
agent_boots = Table(
    "agent_boots",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("agent", String(64), primary_key=True),
    Column("boot", String(64), primary_key=True),
    Column("max_seq", BigInteger),
    Column("received", BigInteger, nullable=False, server_default="0"),
    Column("gaps", BigInteger, nullable=False, server_default="0"),
    Column("missing", BigInteger, nullable=False, server_default="0"),
    # Telemetry the agent's spool evicted, as its births of this start reported (``dropped``).
    Column("dropped", BigInteger, nullable=False, server_default="0"),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
)


# -- notifications (collector/notify/, collector/sinks/; migration 0006_outbox) ---------------------------

#: Every ticket event someone may need to hear of, written with the event (``tickets.add_entry``), in the
#: same transaction; ``routed_at`` is set once its deliveries are made.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_id", Integer, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
    Column("entry_id", Integer, ForeignKey("ticket_entries.id", ondelete="CASCADE"), nullable=False),
    Column("event", String(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("routed_at", UTCDateTime, index=True),
)

#: One outbox entry to one sink (and recipient): ``pending`` (with its next attempt), ``sent`` or ``dead``.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("outbox_id", Integer, ForeignKey("outbox.id", ondelete="CASCADE"), nullable=False),
    Column("ticket_id", Integer, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
    Column("sink", String(64), nullable=False),
    #: Empty: the sink's own recipients; else the one address it goes to (a customer contact).
    Column("recipient", String(254), nullable=False, server_default=""),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("lease_until", UTCDateTime),
    #: Which dispatcher holds the lease (its collector's MQTT client id): a restarted one frees its own.
    Column("leased_by", String(128)),
    Column("last_error", Text),
    Column("sent_at", UTCDateTime),
    Column("remote_ref", String(255)),
    UniqueConstraint("outbox_id", "sink", "recipient", name="uq_deliveries_once"),
)
Index("ix_deliveries_due", deliveries.c.sink, deliveries.c.status, deliveries.c.next_attempt_at)
Index("ix_deliveries_ticket", deliveries.c.ticket_id, deliveries.c.sink, deliveries.c.status)

#: A hezo ticket's counterpart in an outside desk (an RT ticket, a ServiceNow incident), per sink.
ticket_links = Table(
    "ticket_links",
    metadata,
    Column("ticket_id", Integer, ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True),
    Column("sink", String(64), primary_key=True),
    Column("remote_id", String(255), nullable=False),
    Column("remote_url", Text),
    #: How far the desk's history has been read back (the desk's own marker: a transaction id, a time).
    Column("cursor", String(255)),
    Column("remote_status", String(64)),
    Column("synced_at", UTCDateTime),
)

contracts.append_column(Column("contact", String(255)))

#: What an audit line is about besides a command: a ticket number, a contract, a window, a user.
audit.append_column(Column("subject", String(128), index=True))

#: Who holds what among several collectors on one store (``collector/cluster/leases.py``): ``partition/<n>``
#: (the sites whose tickets that collector decides, and whose messages it consumes) and ``member/<holder>``
#: (a collector alive). A lease is held until ``expires_at``; a new holder bumps ``generation``.
leases = Table(
    "leases",
    metadata,
    Column("name", String(160), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("generation", BigInteger, nullable=False),
    Column("acquired_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)
