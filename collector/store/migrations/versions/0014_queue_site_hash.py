"""The incident queue keeps each site's FNV-1a hash (``site_hash``), so a collector of a cluster reads only
the devices of its own partitions (the hash modulo the partition count) instead of every site's.

Existing rows: their hash is computed here, once per site.

Revision ID: 0014_queue_site_hash
Revises: 0013_entry_events
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from common.fnv import site_hash

revision: str = "0014_queue_site_hash"
down_revision: str | None = "0013_entry_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("incident_queue") as batch:
        batch.add_column(sa.Column("site_hash", sa.BigInteger, nullable=False, server_default="0"))
    queue = sa.table("incident_queue", sa.column("site", sa.String), sa.column("site_hash", sa.BigInteger))
    connection = op.get_bind()
    sites = connection.execute(sa.select(queue.c.site).distinct()).scalars().all()
    for site in sites:
        connection.execute(sa.update(queue).where(queue.c.site == site).values(site_hash=site_hash(site)))


def downgrade() -> None:
    with op.batch_alter_table("incident_queue") as batch:
        batch.drop_column("site_hash")
