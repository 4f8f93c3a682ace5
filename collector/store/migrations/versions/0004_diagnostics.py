"""Remote diagnostics: commands to agents, their audit log, and uploaded log bundles.

Revision ID: 0004_diagnostics
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_diagnostics"
down_revision: str | None = "0003_sla"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "commands",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("device", sa.String(64)),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("args", sa.JSON, nullable=False),
        sa.Column("ticket", sa.String(32)),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.Float),
        sa.Column("message", sa.Text),
        sa.Column("result", sa.JSON),
        _when("issued_at", nullable=False),
        _when("expires_at", nullable=False),
        _when("updated_at", nullable=False),
        sa.Column("upload_token_sha256", sa.String(64)),
        sa.Column("upload_length", sa.BigInteger),
        sa.Column("upload_sha256", sa.String(64)),
    )
    op.create_index("ix_commands_ticket", "commands", ["ticket"])
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _when("at", nullable=False),
        sa.Column("site", sa.String(64)),
        sa.Column("agent", sa.String(64)),
        sa.Column("command_id", sa.String(64)),
        sa.Column("action", sa.String(64)),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_audit_at", "audit", ["at"])
    op.create_index("ix_audit_command_id", "audit", ["command_id"])
    op.create_table(
        "bundles",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("command_id", sa.String(64), nullable=False, unique=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("device", sa.String(64)),
        sa.Column("ticket", sa.String(32)),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("manifest", sa.JSON, nullable=False),
        _when("created_at", nullable=False),
        _when("expires_at", nullable=False),
    )
    op.create_index("ix_bundles_ticket", "bundles", ["ticket"])
    op.create_index("ix_bundles_expires_at", "bundles", ["expires_at"])


def downgrade() -> None:
    op.drop_table("bundles")
    op.drop_table("audit")
    op.drop_table("commands")
