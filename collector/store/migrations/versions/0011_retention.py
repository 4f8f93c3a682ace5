"""Retention: message identities keep their envelope ``ts``; on PostgreSQL ``messages`` and ``samples`` become
tables partitioned by day on ``ts`` (with a default partition each); hourly history of samples
(``sample_hours``); the marks retention keeps (``retention_marks``).

Existing rows: a stored identity gets its ``received_at`` as ``ts`` (the envelope's time was not kept); on
PostgreSQL both tables are copied into their partitioned successors, landing in the default partitions,
from which retention moves today's rows into day partitions and deletes old ones in batches.

Revision ID: 0011_retention
Revises: 0009_people
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_retention"
down_revision: str | None = "0010_incident_queue"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MESSAGES = "site, agent, boot, seq, kind, received_at"
_SAMPLES = "site, agent, boot, seq, idx, device, metric, value, ts"
_POSTGRES_UP = [
    "ALTER TABLE messages RENAME TO messages_unpartitioned",
    "ALTER TABLE messages_unpartitioned RENAME CONSTRAINT messages_pkey TO messages_unpartitioned_pkey",
    "CREATE TABLE messages (site VARCHAR(64) NOT NULL, agent VARCHAR(64) NOT NULL, "
    "boot VARCHAR(64) NOT NULL, seq BIGINT NOT NULL, kind VARCHAR(16) NOT NULL, "
    "received_at TIMESTAMP WITH TIME ZONE NOT NULL, ts TIMESTAMP WITH TIME ZONE NOT NULL, "
    "CONSTRAINT messages_pkey PRIMARY KEY (site, agent, boot, seq, ts)) PARTITION BY RANGE (ts)",
    "CREATE TABLE messages_default PARTITION OF messages DEFAULT",
    f"INSERT INTO messages ({_MESSAGES}, ts) SELECT {_MESSAGES}, received_at FROM messages_unpartitioned",  # noqa: S608
    "DROP TABLE messages_unpartitioned",
    "CREATE INDEX ix_messages_ts ON messages USING brin (ts) WITH (autosummarize = on)",
    "ALTER TABLE samples RENAME TO samples_unpartitioned",
    "CREATE TABLE samples (site VARCHAR(64) NOT NULL, agent VARCHAR(64) NOT NULL, boot VARCHAR(64) NOT NULL, "
    "seq BIGINT NOT NULL, idx INTEGER NOT NULL, device VARCHAR(64) NOT NULL, metric VARCHAR(128) NOT NULL, "
    "value FLOAT NOT NULL, ts TIMESTAMP WITH TIME ZONE NOT NULL) PARTITION BY RANGE (ts)",
    "CREATE TABLE samples_default PARTITION OF samples DEFAULT",
    f"INSERT INTO samples ({_SAMPLES}) SELECT {_SAMPLES} FROM samples_unpartitioned",  # noqa: S608
    "DROP TABLE samples_unpartitioned",
    "CREATE INDEX ix_samples_ts ON samples USING brin (ts) WITH (autosummarize = on)",
]
_POSTGRES_DOWN = [
    "CREATE TABLE messages_unpartitioned (site VARCHAR(64) NOT NULL, agent VARCHAR(64) NOT NULL, "
    "boot VARCHAR(64) NOT NULL, seq BIGINT NOT NULL, kind VARCHAR(16) NOT NULL, "
    "received_at TIMESTAMP WITH TIME ZONE NOT NULL, PRIMARY KEY (site, agent, boot, seq))",
    f"INSERT INTO messages_unpartitioned ({_MESSAGES}) "  # noqa: S608
    f"SELECT DISTINCT ON (site, agent, boot, seq) {_MESSAGES} FROM messages",
    "DROP TABLE messages",
    "ALTER TABLE messages_unpartitioned RENAME TO messages",
    "ALTER TABLE messages RENAME CONSTRAINT messages_unpartitioned_pkey TO messages_pkey",
    "CREATE TABLE samples_unpartitioned (site VARCHAR(64) NOT NULL, agent VARCHAR(64) NOT NULL, "
    "boot VARCHAR(64) NOT NULL, seq BIGINT NOT NULL, idx INTEGER NOT NULL, device VARCHAR(64) NOT NULL, "
    "metric VARCHAR(128) NOT NULL, value FLOAT NOT NULL, ts TIMESTAMP WITH TIME ZONE NOT NULL)",
    f"INSERT INTO samples_unpartitioned ({_SAMPLES}) SELECT {_SAMPLES} FROM samples",  # noqa: S608
    "DROP TABLE samples",
    "ALTER TABLE samples_unpartitioned RENAME TO samples",
]


def _when(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in _POSTGRES_UP:
            op.execute(statement)
    else:
        with op.batch_alter_table("messages") as batch:
            batch.add_column(sa.Column("ts", sa.DateTime(timezone=True)))
        op.execute("UPDATE messages SET ts = received_at")
        with op.batch_alter_table("messages") as batch:
            batch.alter_column("ts", existing_type=sa.DateTime(timezone=True), nullable=False)
        op.create_index("ix_messages_ts", "messages", ["ts"])
        op.create_index("ix_samples_ts", "samples", ["ts"])
    op.create_table(
        "sample_hours",
        sa.Column("site", sa.String(64), primary_key=True),
        sa.Column("agent", sa.String(64), primary_key=True),
        sa.Column("device", sa.String(64), primary_key=True),
        sa.Column("metric", sa.String(128), primary_key=True),
        sa.Column("hour", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("samples", sa.BigInteger, nullable=False),
        sa.Column("minimum", sa.Float, nullable=False),
        sa.Column("maximum", sa.Float, nullable=False),
        sa.Column("total", sa.Float, nullable=False),
    )
    op.create_index("ix_sample_hours_hour", "sample_hours", ["hour"])
    op.create_table(
        "retention_marks",
        sa.Column("name", sa.String(32), primary_key=True),
        _when("at"),
    )


def downgrade() -> None:
    op.drop_table("retention_marks")
    op.drop_index("ix_sample_hours_hour", "sample_hours")
    op.drop_table("sample_hours")
    if op.get_bind().dialect.name == "postgresql":
        for statement in _POSTGRES_DOWN:
            op.execute(statement)
        return
    op.drop_index("ix_samples_ts", "samples")
    op.drop_index("ix_messages_ts", "messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("ts")
