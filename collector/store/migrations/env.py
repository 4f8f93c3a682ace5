"""Alembic environment: runs migrations on the engine the collector hands over in ``config.attributes``."""

from alembic import context
from sqlalchemy import Engine

from collector.store import accounts, history, horizons, incident_queue  # noqa: F401 (their tables are part of the schema)
from collector.store.schema import metadata


def run_migrations_online() -> None:
    engine = context.config.attributes["engine"]
    assert isinstance(engine, Engine)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("hezo-collector migrations run online only: use 'hezo-collector migrate'")
run_migrations_online()
