"""Initial schema: agents, devices, events, rejected messages, tickets and their timeline.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("site", sa.String(64), primary_key=True),
        sa.Column("agent", sa.String(64), primary_key=True),
        sa.Column("online", sa.Boolean, nullable=False),
        sa.Column("boot", sa.String(64)),
        sa.Column("status_seq", sa.BigInteger),
        sa.Column("version", sa.String(64)),
        sa.Column("hostname", sa.String(255)),
        sa.Column("will_seq", sa.BigInteger),
        _when("last_seen"),
        _when("status_changed_at"),
    )
    op.create_table(
        "devices",
        sa.Column("site", sa.String(64), primary_key=True),
        sa.Column("agent", sa.String(64), primary_key=True),
        sa.Column("device", sa.String(64), primary_key=True),
        sa.Column("model", sa.String(128)),
        sa.Column("serial", sa.String(128)),
        sa.Column("name", sa.String(255)),
        sa.Column("room", sa.String(255)),
        sa.Column("contract", sa.String(128)),
        sa.Column("state", sa.String(16), nullable=False),
        _when("state_since"),
        sa.Column("state_reason", sa.Text),
        sa.Column("checks", sa.JSON),
        _when("state_ts"),
        sa.Column("state_boot", sa.String(64)),
        sa.Column("state_seq", sa.BigInteger),
        _when("down_since"),
        _when("updated_at"),
        _when("retired_at"),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("boot", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        _when("ts", nullable=False),
        _when("received_at", nullable=False),
        sa.Column("device", sa.String(64)),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.UniqueConstraint("site", "agent", "boot", "seq", name="uq_events_identity"),
    )
    op.create_table(
        "rejected",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        _when("received_at", nullable=False),
    )
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("number", sa.String(32), unique=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("device", sa.String(64), nullable=False),
        sa.Column("model", sa.String(128)),
        sa.Column("serial", sa.String(128)),
        sa.Column("contract", sa.String(128)),
        sa.Column("room", sa.String(255)),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("cause", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _when("opened_at", nullable=False),
        _when("response_due", nullable=False),
        _when("recovered_at"),
        sa.Column("evidence", sa.JSON),
    )
    op.create_index(
        "uq_tickets_open_per_cause",
        "tickets",
        ["site", "agent", "device", "cause"],
        unique=True,
        sqlite_where=sa.text("status != 'closed'"),
        postgresql_where=sa.text("status != 'closed'"),
    )
    op.create_table(
        "ticket_entries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
        _when("at", nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
    )
    op.create_index("ix_ticket_entries_ticket_id", "ticket_entries", ["ticket_id"])


def downgrade() -> None:
    op.drop_index("ix_ticket_entries_ticket_id", table_name="ticket_entries")
    op.drop_table("ticket_entries")
    op.drop_index("uq_tickets_open_per_cause", table_name="tickets")
    op.drop_table("tickets")
    op.drop_table("rejected")
    op.drop_table("events")
    op.drop_table("devices")
    op.drop_table("agents")
