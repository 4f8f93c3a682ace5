"""Notifications: an outbox of ticket events, their deliveries to each sink, the tickets' counterparts in
outside desks, and a contact address per contract.

Revision ID: 0006_outbox
Revises: 0005_samples_unkeyed
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_outbox"
down_revision: str | None = "0005_samples_unkeyed"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
        sa.Column(
            "entry_id", sa.Integer, sa.ForeignKey("ticket_entries.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("event", sa.String(32), nullable=False),
        _when("created_at", nullable=False),
        _when("routed_at"),
    )
    op.create_index("ix_outbox_routed_at", "outbox", ["routed_at"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("outbox_id", sa.Integer, sa.ForeignKey("outbox.id", ondelete="CASCADE"), nullable=False),
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("sink", sa.String(64), nullable=False),
        sa.Column("recipient", sa.String(254), nullable=False, server_default=""),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        _when("next_attempt_at", nullable=False),
        _when("lease_until"),
        sa.Column("leased_by", sa.String(128)),
        sa.Column("last_error", sa.Text),
        _when("sent_at"),
        sa.Column("remote_ref", sa.String(255)),
        sa.UniqueConstraint("outbox_id", "sink", "recipient", name="uq_deliveries_once"),
    )
    op.create_index("ix_deliveries_due", "deliveries", ["sink", "status", "next_attempt_at"])
    op.create_index("ix_deliveries_ticket", "deliveries", ["ticket_id", "sink", "status"])
    op.create_table(
        "ticket_links",
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("sink", sa.String(64), primary_key=True),
        sa.Column("remote_id", sa.String(255), nullable=False),
        sa.Column("remote_url", sa.Text),
        sa.Column("cursor", sa.String(255)),
        sa.Column("remote_status", sa.String(64)),
        _when("synced_at"),
    )
    op.add_column("contracts", sa.Column("contact", sa.String(255)))


def downgrade() -> None:
    op.drop_column("contracts", "contact")
    op.drop_table("ticket_links")
    op.drop_index("ix_deliveries_ticket", "deliveries")
    op.drop_index("ix_deliveries_due", "deliveries")
    op.drop_table("deliveries")
    op.drop_index("ix_outbox_routed_at", "outbox")
    op.drop_table("outbox")
