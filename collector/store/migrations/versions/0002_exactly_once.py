"""Exactly-once ingest: message identities, telemetry samples, per-boot seq bookkeeping, gap counts.

Revision ID: 0002_exactly_once
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_exactly_once"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _identity() -> list[sa.Column[object]]:
    return [
        sa.Column("site", sa.String(64), primary_key=True),
        sa.Column("agent", sa.String(64), primary_key=True),
        sa.Column("boot", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    ]


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("seq_gaps", sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("seq_missing", sa.BigInteger, nullable=False, server_default="0"))
    op.create_table(
        "messages",
        *_identity(),
        sa.Column("kind", sa.String(16), nullable=False),
        _when("received_at", nullable=False),
    )
    op.create_table(
        "samples",
        *_identity(),
        sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("device", sa.String(64), nullable=False),
        sa.Column("metric", sa.String(128), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        _when("ts", nullable=False),
    )
    op.create_table(
        "agent_boots",
        sa.Column("site", sa.String(64), primary_key=True),
        sa.Column("agent", sa.String(64), primary_key=True),
        sa.Column("boot", sa.String(64), primary_key=True),
        sa.Column("max_seq", sa.BigInteger),
        sa.Column("received", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("gaps", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("missing", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("dropped", sa.BigInteger, nullable=False, server_default="0"),
        _when("first_seen", nullable=False),
        _when("last_seen", nullable=False),
    )


def downgrade() -> None:
    op.drop_table("agent_boots")
    op.drop_table("samples")
    op.drop_table("messages")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("seq_missing")
        batch.drop_column("seq_gaps")
