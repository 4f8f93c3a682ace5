"""Trust: the agents enrolled with the collector; rejected messages found by digest and kept within bounds.

Revision ID: 0007_trust
Revises: 0006_outbox
Create Date: 2026-12-04
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_trust"
down_revision: str | None = "0006_outbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "enrolments",
        sa.Column("site", sa.String(64), primary_key=True),
        sa.Column("agent", sa.String(64), primary_key=True),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("enrolled_by", sa.String(128), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_by", sa.String(128)),
    )
    op.add_column("rejected", sa.Column("payload_sha256", sa.String(64)))
    rejected = sa.table(
        "rejected",
        sa.column("id", sa.Integer),
        sa.column("payload", sa.LargeBinary),
        sa.column("payload_sha256"),
    )
    connection = op.get_bind()
    rows = connection.execute(sa.select(rejected.c.id, rejected.c.payload)).all()
    for row in rows:  # the digest the duplicate check of retained copies looks up
        digest = hashlib.sha256(bytes(row.payload)).hexdigest()
        connection.execute(sa.update(rejected).where(rejected.c.id == row.id).values(payload_sha256=digest))
    op.create_index("ix_rejected_topic_digest", "rejected", ["topic", "payload_sha256"])
    op.create_index("ix_rejected_received_at", "rejected", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_rejected_received_at", "rejected")
    op.drop_index("ix_rejected_topic_digest", "rejected")
    with op.batch_alter_table("rejected") as batch:
        batch.drop_column("payload_sha256")
    op.drop_table("enrolments")
