"""Incidents and SLA: ticket lifecycle times and deadlines, SLA breaches, device history, contracts,
maintenance windows.

Revision ID: 0003_sla
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_sla"
down_revision: str | None = "0002_exactly_once"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TICKET_TIMES = (
    "responded_at",
    "last_update_at",
    "confirmed_at",
    "delivery_accepted",
    "shipped_at",
    "delivered_at",
    "returned_at",
    "resolved_at",
    "closed_at",
    "update_due",
    "delivery_due",
    "return_due",
)


def _when(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    # ADD COLUMN of a nullable column needs no table rebuild, on SQLite as on PostgreSQL.
    op.add_column("tickets", sa.Column("opened_by", sa.String(128)))
    op.add_column("tickets", sa.Column("summary", sa.Text))
    for name in TICKET_TIMES:
        op.add_column("tickets", _when(name))
    op.add_column("tickets", sa.Column("sla_state", sa.String(16)))
    op.add_column("ticket_entries", sa.Column("by", sa.String(128)))
    op.add_column("ticket_entries", sa.Column("sla_state", sa.String(16)))
    op.create_table(
        "sla_breaches",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("deadline", sa.String(16), nullable=False),
        _when("due", nullable=False),
        _when("detected_at", nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.UniqueConstraint("ticket_id", "deadline", "due", name="uq_sla_breaches_once"),
    )
    op.create_index("ix_sla_breaches_ticket_id", "sla_breaches", ["ticket_id"])
    op.create_table(
        "device_transitions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("device", sa.String(64), nullable=False),
        _when("at", nullable=False),
        sa.Column("from_state", sa.String(16), nullable=False),
        sa.Column("to_state", sa.String(16), nullable=False),
    )
    op.create_index(
        "ix_device_transitions_device_at", "device_transitions", ["site", "agent", "device", "at"]
    )
    op.create_table(
        "device_conditions",
        sa.Column("site", sa.String(64), primary_key=True),
        sa.Column("agent", sa.String(64), primary_key=True),
        sa.Column("device", sa.String(64), primary_key=True),
        sa.Column("condition", sa.String(32), primary_key=True),
        _when("since", nullable=False),
    )
    op.create_table(
        "contracts",
        sa.Column("number", sa.String(128), primary_key=True),
        sa.Column("start", sa.Date, nullable=False),
        sa.Column("years", sa.Integer, nullable=False),
        sa.Column("customer", sa.String(255)),
        sa.Column("serials", sa.JSON),
        sa.Column("source", sa.String(16), nullable=False),
    )
    op.create_table(
        "maintenance",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(64)),
        sa.Column("device", sa.String(64)),
        sa.Column("days", sa.String(64)),
        sa.Column("start_time", sa.String(5)),
        sa.Column("end_time", sa.String(5)),
        _when("starts_at"),
        _when("ends_at"),
        sa.Column("reason", sa.Text),
        sa.Column("source", sa.String(16), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("maintenance")
    op.drop_table("contracts")
    op.drop_table("device_conditions")
    op.drop_index("ix_device_transitions_device_at", table_name="device_transitions")
    op.drop_table("device_transitions")
    op.drop_index("ix_sla_breaches_ticket_id", table_name="sla_breaches")
    op.drop_table("sla_breaches")
    with op.batch_alter_table("ticket_entries") as batch:
        batch.drop_column("sla_state")
        batch.drop_column("by")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("sla_state")
        for name in reversed(TICKET_TIMES):
            batch.drop_column(name)
        batch.drop_column("summary")
        batch.drop_column("opened_by")
