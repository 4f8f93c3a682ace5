"""The store: migrations build exactly the schema the code queries (SQLite and PostgreSQL), datetimes come
back in UTC, and a plain ``postgresql://`` URL uses the installed psycopg 3 driver."""

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, insert, select

from collector.store import accounts, history, horizons, incident_queue  # noqa: F401 (their tables belong to the metadata)
from collector.store.database import engine_url, migrate
from collector.store.partitions import is_partition
from collector.store.schema import agents, metadata
from tests.support import postgres
from tests.support.collector import T0, migrated_engine
from tests.support.mosquitto import free_port


def _not_a_partition(name: str | None, kind: str, _parent: object) -> bool:
    return not (kind == "table" and name is not None and is_partition(name))


def test_migrations_match_the_table_definitions(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": _not_a_partition})
        assert compare_metadata(context, metadata) == []


def test_migrating_twice_is_harmless(tmp_path: Path) -> None:
    engine = migrated_engine(tmp_path)
    migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(select(agents)).all() == []


def test_datetimes_come_back_timezone_aware_utc(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(agents).values(site="hq", agent="a", online=True, last_seen=T0))
    with engine.connect() as conn:
        last_seen = conn.execute(select(agents.c.last_seen)).scalar_one()
    assert last_seen == T0
    assert last_seen.utcoffset() is not None


def test_a_plain_postgresql_url_means_psycopg_3() -> None:
    assert engine_url("postgresql://hezo@db/hezo").drivername == "postgresql+psycopg"
    assert engine_url("sqlite:///x.db").drivername == "sqlite"


def test_an_unreachable_postgresql_fails_the_test_saying_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres, "URL", f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test")
    schema = postgres.postgres_schema()
    with pytest.raises(pytest.fail.Exception, match=r"PostgreSQL at .* is not reachable"):
        schema.__enter__()
