"""Broker logins: the credential each enrolled agent holds, as its password's SHA-256, never the password.

Revision ID: 0008_broker_logins
Revises: 0007_trust
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_broker_logins"
down_revision: str | None = "0007_trust"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing enrolments had no broker login: the new columns stay empty for them.
    with op.batch_alter_table("enrolments") as batch:
        batch.add_column(sa.Column("credential_sha256", sa.String(64)))
        batch.add_column(sa.Column("credential_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("credential_by", sa.String(128)))


def downgrade() -> None:
    with op.batch_alter_table("enrolments") as batch:
        batch.drop_column("credential_by")
        batch.drop_column("credential_at")
        batch.drop_column("credential_sha256")
