"""The incident queue: the devices the incident engine has to look at, and from when, so an evaluation
works on what changed instead of reading every device. Every device not retired is made due at once, so the
first evaluation after the upgrade looks at each of them as every evaluation did before.

Revision ID: 0010_incident_queue
Revises: 0009_people
Create Date: 2026-12-04
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0010_incident_queue"
down_revision: str | None = "0009_people"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: "Due at once": before any evaluation.
_AT_ONCE = datetime(1970, 1, 1, tzinfo=UTC)


def upgrade() -> None:
    queue = op.create_table(
        "incident_queue",
        sa.Column("site", sa.String(64), primary_key=True),
        sa.Column("agent", sa.String(64), primary_key=True),
        sa.Column("device", sa.String(64), primary_key=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changes", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_index("ix_incident_queue_due_at", "incident_queue", ["due_at"])
    assert queue is not None
    devices = sa.table(
        "devices",
        sa.column("site", sa.String),
        sa.column("agent", sa.String),
        sa.column("device", sa.String),
        sa.column("retired_at", sa.DateTime(timezone=True)),
    )
    due = sa.literal(_AT_ONCE, sa.DateTime(timezone=True))
    op.execute(
        sa.insert(queue).from_select(
            ["site", "agent", "device", "due_at"],
            sa.select(devices.c.site, devices.c.agent, devices.c.device, due).where(
                devices.c.retired_at.is_(None)
            ),
        )
    )


def downgrade() -> None:
    op.drop_index("ix_incident_queue_due_at", table_name="incident_queue")
    op.drop_table("incident_queue")
