"""Retention on SQLite and PostgreSQL: old rows go, recent ones stay, the hourly history outlives the samples,
and exactly-once holds after the identities are dropped: a copy delivered later is still a duplicate."""

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, func, select, text

from collector.config import load_config
from collector.ingest.pipeline import Ingest
from collector.metrics import Metrics
from collector.store import partitions
from collector.store.history import device_history
from collector.store.horizons import HORIZON_LOCK, MESSAGES, RUN_LOCK, lock_out_claims, set_mark, store_lock
from collector.store.retention import Expiry, RetentionConfig, kept_from, run, status
from collector.store.schema import events, messages, samples
from common.configfile import ConfigError
from tests.support.collector import T0, FakeAgent
from tests.support.postgres import postgres_schema
from tests.support.waiting import eventually

DAY = timedelta(days=1)
SETTINGS = RetentionConfig(samples_days=3, messages_days=5, events_days=5, history_days=30)


def count(engine: Engine, table) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def duplicates(metrics: Metrics) -> float:
    return metrics.registry.get_sample_value("hezo_messages_duplicate_total") or 0.0


@pytest.fixture
def ingest(engine: Engine, metrics: Metrics) -> Ingest:
    return Ingest(engine, metrics, "hezo/v1")


@pytest.fixture
def postgres() -> Iterator[Engine]:
    """For what only PostgreSQL has: partitions, advisory locks, collectors sharing one store."""
    with postgres_schema() as engine:
        yield engine


@pytest.fixture
def pg_ingest(postgres: Engine, metrics: Metrics) -> Ingest:
    return Ingest(postgres, metrics, "hezo/v1")


def test_a_copy_delivered_after_its_identity_was_dropped_is_still_a_duplicate(
    engine: Engine, ingest: Ingest, metrics: Metrics
) -> None:
    run(engine, SETTINGS, T0)  # on PostgreSQL: the day partitions from T0's day on
    topic, payload = FakeAgent().telemetry(at=T0, count=3)
    ingest.handle(topic, payload, T0)
    assert (count(engine, messages), count(engine, samples)) == (1, 3)

    later = T0 + 10 * DAY
    outcome = run(engine, SETTINGS, later)
    assert count(engine, messages) == 0
    if engine.dialect.name == "postgresql":
        assert T0.date() in outcome.dropped["messages"]
    else:
        assert outcome.deleted["messages"] == 1

    ingest.handle(topic, payload, later)
    assert duplicates(metrics) == 1
    assert (count(engine, messages), count(engine, samples)) == (0, 0)


def test_a_message_newer_than_the_kept_days_is_still_taken(engine: Engine, ingest: Ingest) -> None:
    agent = FakeAgent()
    ingest.handle(*agent.telemetry(at=T0), T0)
    later = T0 + 10 * DAY
    run(engine, SETTINGS, later)
    ingest.handle(*agent.telemetry(at=later - DAY), later)
    assert (count(engine, messages), count(engine, samples)) == (1, 2)


def test_a_message_stamped_at_the_first_kept_moment_stays_and_its_copy_is_a_duplicate(
    engine: Engine, ingest: Ingest, metrics: Metrics
) -> None:
    first_kept = kept_from((T0 + DAY).date(), SETTINGS.messages_days)
    topic, payload = FakeAgent().telemetry(at=first_kept)
    ingest.handle(topic, payload, T0)
    run(engine, SETTINGS, T0 + DAY)
    ingest.handle(topic, payload, T0 + DAY)
    assert duplicates(metrics) == 1
    assert count(engine, messages) == 1


def test_a_copy_of_a_kept_message_is_a_duplicate_after_a_run(
    engine: Engine, ingest: Ingest, metrics: Metrics
) -> None:
    topic, payload = FakeAgent().telemetry(at=T0)
    ingest.handle(topic, payload, T0)
    run(engine, SETTINGS, T0 + DAY)  # on PostgreSQL the message moves from the default partition to its day
    ingest.handle(topic, payload, T0 + DAY)
    assert duplicates(metrics) == 1
    assert (count(engine, messages), count(engine, samples)) == (1, 2)


def test_samples_go_after_their_days_and_their_hours_stay_in_the_history(
    engine: Engine, ingest: Ingest
) -> None:
    agent = FakeAgent()
    ingest.handle(*agent.telemetry(at=T0, count=3), T0)  # 10, 11, 12
    ingest.handle(*agent.telemetry(at=T0 + timedelta(minutes=59), count=1), T0 + timedelta(minutes=59))  # 10
    run(engine, SETTINGS, T0 + 2 * timedelta(hours=1))
    run(engine, SETTINGS, T0 + 4 * DAY)
    assert count(engine, samples) == 0
    with engine.connect() as conn:
        hours = device_history(
            conn, "hq", "room-101-pc", "rally-bar-1", "https.duration_ms", since=T0, until=T0 + DAY
        )
    assert hours == [{"hour": T0, "samples": 4, "minimum": 10.0, "maximum": 12.0, "mean": 10.75}]


def test_an_hour_is_rolled_up_once_however_many_runs(engine: Engine, ingest: Ingest) -> None:
    ingest.handle(*FakeAgent().telemetry(at=T0, count=2), T0)
    for hours in (2, 3, 4):
        run(engine, SETTINGS, T0 + timedelta(hours=hours))
    with engine.connect() as conn:
        history = device_history(
            conn, "hq", "room-101-pc", "rally-bar-1", "https.duration_ms", since=T0, until=T0 + DAY
        )
    assert [hour["samples"] for hour in history] == [2]


def test_the_history_goes_after_its_own_days(engine: Engine, ingest: Ingest) -> None:
    ingest.handle(*FakeAgent().telemetry(at=T0), T0)
    run(engine, SETTINGS, T0 + 2 * timedelta(hours=1))
    outcome = run(engine, SETTINGS, T0 + 40 * DAY)
    assert outcome.deleted["sample_hours"] == 1


def test_events_go_after_their_days(engine: Engine, ingest: Ingest) -> None:
    agent = FakeAgent()
    ingest.handle(*agent.event(at=T0), T0)
    ingest.handle(*agent.event(at=T0 + 3 * DAY), T0 + 3 * DAY)
    run(engine, SETTINGS, T0 + 7 * DAY)
    assert count(engine, events) == 1


def test_deletes_go_in_batches_until_nothing_old_is_left(engine: Engine, ingest: Ingest) -> None:
    agent = FakeAgent()
    ingest.handle_batch([(*agent.telemetry(at=T0, count=5), T0, False) for _ in range(50)])  # 250 samples
    ingest.handle(*agent.telemetry(at=T0 + 9 * DAY, count=5), T0 + 9 * DAY)
    outcome = run(engine, SETTINGS.model_copy(update={"delete_batch": 100}), T0 + 10 * DAY)
    assert count(engine, samples) == 5
    if engine.dialect.name == "sqlite":
        assert outcome.deleted["samples"] == 250


def test_a_day_partition_made_late_takes_its_rows_from_the_default_one(
    postgres: Engine, pg_ingest: Ingest
) -> None:
    pg_ingest.handle(*FakeAgent().telemetry(at=T0, count=3), T0)
    outcome = run(postgres, SETTINGS, T0)
    assert T0.date() in outcome.made["samples"]
    name = partitions.partition_name("samples", T0.date())
    with postgres.connect() as conn:
        in_day = conn.execute(text(f"SELECT count(*) FROM {name}")).scalar_one()
        in_default = conn.execute(text("SELECT count(*) FROM samples_default")).scalar_one()
    assert (in_day, in_default) == (3, 0)


def test_status_names_every_table_with_its_days(engine: Engine, ingest: Ingest) -> None:
    ingest.handle(*FakeAgent().telemetry(at=T0), T0)
    run(engine, SETTINGS, T0)
    with engine.connect() as conn:
        rows = {row["table"]: row for row in status(conn, SETTINGS)}
    assert {name: row["days"] for name, row in rows.items()} == {
        "messages": 5,
        "samples": 3,
        "events": 5,
        "sample_hours": 30,
    }
    if engine.dialect.name == "postgresql":
        assert rows["samples"]["partitions"] == SETTINGS.partitions_ahead_days + 1
        assert rows["samples"]["bytes"] > 0
    else:
        assert rows["samples"]["rows"] == 2


def test_identities_kept_shorter_than_samples_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text("retention:\n  samples_days: 30\n  messages_days: 7\n")
    with pytest.raises(
        ConfigError, match=r"retention.*messages_days \(7\) must be at least samples_days \(30\)"
    ):
        load_config(path)


def test_an_unknown_retention_key_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text("retention:\n  sample_days: 30\n")
    with pytest.raises(ConfigError, match=r"retention\.sample_days"):
        load_config(path)


def test_a_claim_waits_while_a_run_moves_the_mark_and_then_sees_the_new_one(
    postgres: Engine, pg_ingest: Ingest, metrics: Metrics
) -> None:
    topic, payload = FakeAgent().telemetry(at=T0)
    pg_ingest.handle(topic, payload, T0)
    # Retention's side: the identity dropped behind a new mark, not committed yet.
    with postgres.begin() as conn:
        lock_out_claims(conn)
        set_mark(conn, MESSAGES, T0 + DAY)
        conn.execute(delete(messages))
        claim = threading.Thread(target=pg_ingest.handle, args=(topic, payload, T0 + DAY))
        claim.start()
        with postgres.connect() as watcher:
            eventually(
                "the claim waiting on the retention lock",
                lambda: watcher.execute(
                    text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                        "AND classid = :key AND objsubid = 2 "
                        "AND objid::bigint = hashtext(current_schema())::bigint & 4294967295"
                    ),
                    {"key": HORIZON_LOCK},
                ).scalar_one(),
            )
    claim.join(timeout=20)
    assert not claim.is_alive()
    assert duplicates(metrics) == 1
    assert count(postgres, messages) == 0


def test_the_collector_runs_retention_every_period(engine: Engine, ingest: Ingest) -> None:
    ingest.handle(*FakeAgent().telemetry(at=T0), T0)
    expiry = Expiry(engine, SETTINGS, now=lambda: T0 + 10 * DAY, every=0.01)
    expiry.start()
    try:
        eventually("a retention run", lambda: expiry.runs)
    finally:
        expiry.stop()
    assert count(engine, samples) == 0


def test_the_collector_makes_the_day_partitions_at_start_and_deletes_nothing_then(
    postgres: Engine, pg_ingest: Ingest
) -> None:
    pg_ingest.handle(*FakeAgent().telemetry(at=T0), T0)
    expiry = Expiry(postgres, SETTINGS, now=lambda: T0 + 10 * DAY)
    expiry.start()
    try:
        with postgres.connect() as conn:
            eventually(
                "today's partition", lambda: (T0 + 10 * DAY).date() in partitions.days(conn, "samples")
            )
    finally:
        expiry.stop()
    assert (expiry.runs, count(postgres, samples)) == (0, 2)


def test_retention_off_starts_no_thread(engine: Engine) -> None:
    expiry = Expiry(engine, SETTINGS.model_copy(update={"enabled": False}), now=lambda: T0 + 10 * DAY)
    expiry.start()
    assert not expiry.alive()
    expiry.stop()


def test_a_run_while_another_collector_runs_one_does_nothing(postgres: Engine, pg_ingest: Ingest) -> None:
    pg_ingest.handle(*FakeAgent().telemetry(at=T0), T0)
    with postgres.connect() as other:
        other.execute(select(func.pg_advisory_lock(*store_lock(RUN_LOCK))))
        outcome = run(postgres, SETTINGS, T0 + 10 * DAY)
        other.execute(select(func.pg_advisory_unlock(*store_lock(RUN_LOCK))))
    assert outcome.skipped
    assert count(postgres, samples) == 2
    assert not run(postgres, SETTINGS, T0 + 10 * DAY).skipped
    assert count(postgres, samples) == 0
