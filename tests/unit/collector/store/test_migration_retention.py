"""Migration 0011_retention on a store that holds messages and samples: nothing is lost going up or down, and
on PostgreSQL the old rows wait in the default partitions for retention to move or expire them."""

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import BigInteger, Engine, Float, Integer, String, column, func, insert, select, table, text

from collector.store.database import alembic_config, make_engine
from collector.store.retention import RetentionConfig, run
from collector.store.schema import UTCDateTime, messages, samples
from tests.support.collector import T0
from tests.support.postgres import postgres_schema

OLD_MESSAGES = table(
    "messages",
    column("site", String),
    column("agent", String),
    column("boot", String),
    column("seq", BigInteger),
    column("kind", String),
    column("received_at", UTCDateTime),
)
OLD_SAMPLES = table(
    "samples",
    *(column(name, String) for name in ("site", "agent", "boot", "device", "metric")),
    column("seq", BigInteger),
    column("idx", Integer),
    column("value", Float),
    column("ts", UTCDateTime),
)


@pytest.fixture(params=["sqlite", "postgresql"])
def at_0009(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A store at 0009_people holding two messages (one a day old) and their samples."""

    def fill(engine: Engine) -> None:
        command.upgrade(alembic_config(engine), "0009_people")
        with engine.begin() as conn:
            for seq, when in ((1, T0 - timedelta(days=1)), (2, T0)):
                identity = {"site": "hq", "agent": "pc", "boot": "b", "seq": seq}
                conn.execute(insert(OLD_MESSAGES).values(**identity, kind="telemetry", received_at=when))
                conn.execute(
                    insert(OLD_SAMPLES).values(**identity, idx=0, device="d", metric="m", value=1.0, ts=when)
                )

    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
        fill(engine)
        yield engine
        engine.dispose()
        return
    with postgres_schema(migrated=False) as engine:
        fill(engine)
        yield engine


def rows(engine: Engine, which) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(which)).scalar_one())


def test_upgrading_keeps_every_identity_with_its_receive_time_as_ts(at_0009: Engine) -> None:
    command.upgrade(alembic_config(at_0009), "head")
    with at_0009.connect() as conn:
        found = conn.execute(select(messages.c.seq, messages.c.ts).order_by(messages.c.seq)).all()
    assert [(seq, ts) for seq, ts in found] == [(1, T0 - timedelta(days=1)), (2, T0)]
    assert rows(at_0009, samples) == 2


def test_after_the_upgrade_retention_expires_the_old_rows(at_0009: Engine) -> None:
    command.upgrade(alembic_config(at_0009), "head")
    if at_0009.dialect.name == "postgresql":
        with at_0009.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM messages_default")).scalar_one() == 2
    settings = RetentionConfig(samples_days=1, messages_days=1)
    run(at_0009, settings, T0 + timedelta(days=1))  # keeps T0's day, not the day before
    assert (rows(at_0009, messages), rows(at_0009, samples)) == (1, 1)


def test_downgrading_keeps_the_identities_and_samples(at_0009: Engine) -> None:
    config = alembic_config(at_0009)
    command.upgrade(config, "head")
    command.downgrade(config, "0009_people")
    assert (rows(at_0009, OLD_MESSAGES), rows(at_0009, OLD_SAMPLES)) == (2, 2)
