"""Samples without a primary key: the claim of their message in ``messages`` keeps them unique.

A message's samples are inserted only by the transaction that claimed its identity (site, agent, boot, seq)
(``collector/ingest.py``), so a second key on the samples guarded nothing the claim does not, and maintaining
it was half of the cost of storing telemetry on PostgreSQL (docs/collector.md, "Throughput"). Nothing reads
samples by that key.

Revision ID: 0005_samples_unkeyed
Revises: 0004_diagnostics
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_samples_unkeyed"
down_revision: str | None = "0004_diagnostics"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = "site, agent, boot, seq, idx, device, metric, value, ts"


def _samples(name: str, *, keyed: bool) -> None:
    op.create_table(
        name,
        sa.Column("site", sa.String(64), primary_key=keyed, nullable=False),
        sa.Column("agent", sa.String(64), primary_key=keyed, nullable=False),
        sa.Column("boot", sa.String(64), primary_key=keyed, nullable=False),
        sa.Column("seq", sa.BigInteger, primary_key=keyed, nullable=False, autoincrement=False),
        sa.Column("idx", sa.Integer, primary_key=keyed, nullable=False, autoincrement=False),
        sa.Column("device", sa.String(64), nullable=False),
        sa.Column("metric", sa.String(128), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
    )


def _rebuild(*, keyed: bool) -> None:
    """SQLite cannot drop or add a primary key in place: copy the rows into a table of the new shape."""
    _samples("samples_new", keyed=keyed)
    op.execute(f"INSERT INTO samples_new ({_COLUMNS}) SELECT {_COLUMNS} FROM samples")  # noqa: S608
    op.drop_table("samples")
    op.rename_table("samples_new", "samples")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("samples_pkey", "samples", type_="primary")
    else:
        _rebuild(keyed=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_primary_key("samples_pkey", "samples", ["site", "agent", "boot", "seq", "idx"])
    else:
        _rebuild(keyed=True)
