"""Ticket entries noting a device event name it (``event_id``), unique per ticket: an event is noted on a
ticket once, whichever collector notes it (a takeover of its site can have two try).

Existing rows: entries written before keep ``event_id`` empty; nothing is read from them.

Revision ID: 0013_entry_events
Revises: 0012_leases
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_entry_events"
down_revision: str | None = "0012_leases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ticket_entries") as batch:
        batch.add_column(sa.Column("event_id", sa.Integer))
    op.create_index("uq_ticket_entries_event", "ticket_entries", ["ticket_id", "event_id"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_ticket_entries_event", table_name="ticket_entries")
    with op.batch_alter_table("ticket_entries") as batch:
        batch.drop_column("event_id")
