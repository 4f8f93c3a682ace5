"""The hourly roll-up on SQLite and PostgreSQL when an hour's figures do not fit a float: retention still
rolls every hour up and goes on, and the history says what it could not hold."""

import logging
import math
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Connection, Engine, insert
from sqlalchemy.exc import DataError

from collector.store import history
from collector.store.history import HOUR, device_history
from collector.store.horizons import HISTORY, mark
from collector.store.retention import RetentionConfig, run
from collector.store.schema import samples
from tests.support.collector import T0

SETTINGS = RetentionConfig(samples_days=3, messages_days=5, events_days=5, history_days=30)
HUGE = 1.7e308  # two of them add up past the largest float (about 1.8e308)


def store_samples(engine: Engine, metric: str, values: list[tuple[float, datetime]]) -> None:
    """Samples as a store holds them from before ingest bounded the values (docs/protocol.md)."""
    rows = [
        {
            "site": "hq",
            "agent": "room-101-pc",
            "boot": "0190a1b2c3d4e5f6",
            "seq": seq,
            "idx": 0,
            "device": "rally-bar-1",
            "metric": metric,
            "value": value,
            "ts": ts,
        }
        for seq, (value, ts) in enumerate(values, start=len(metric) * 1000)
    ]
    with engine.begin() as conn:
        conn.execute(insert(samples), rows)


def hours_of(engine: Engine, metric: str) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return device_history(
            conn, "hq", "room-101-pc", "rally-bar-1", metric, since=T0, until=T0 + timedelta(days=1)
        )


@pytest.mark.parametrize("sign", [1, -1])
def test_an_hour_whose_sum_passes_a_floats_range_is_rolled_up_logged_and_retention_goes_on(
    engine: Engine, sign: int, caplog: pytest.LogCaptureFixture
) -> None:
    store_samples(engine, "power.huge", [(sign * HUGE, T0), (sign * HUGE, T0 + timedelta(minutes=5))])
    store_samples(engine, "https.duration_ms", [(10.0, T0 + timedelta(minutes=10)), (12.0, T0 + HOUR)])

    with caplog.at_level(logging.WARNING, logger="collector.store.history"):
        outcome = run(engine, SETTINGS, T0 + 3 * HOUR)

    said = [r.getMessage() for r in caplog.records if "past a float's range" in r.getMessage()]
    assert len(said) == 1  # that hour only, on either database
    assert T0.isoformat() in said[0]

    assert outcome.hours == 2
    with engine.connect() as conn:
        assert mark(conn, HISTORY) == T0 + 2 * HOUR
    [huge] = hours_of(engine, "power.huge")
    figures = (huge["hour"], huge["samples"], huge["minimum"], huge["maximum"])
    assert figures == (T0, 2, sign * HUGE, sign * HUGE)
    assert huge["mean"] == sign * math.inf  # the total past a float's range; the API shows the mean as null
    assert [(hour["hour"], hour["mean"]) for hour in hours_of(engine, "https.duration_ms")] == [
        (T0, 10.0),
        (T0 + HOUR, 12.0),
    ]
    assert run(engine, SETTINGS, T0 + 4 * HOUR).hours == 1  # and the runs after it go on too


def test_an_hour_the_database_refuses_to_roll_up_is_left_out_logged_and_retention_goes_on(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store_samples(engine, "https.duration_ms", [(10.0, T0), (12.0, T0 + HOUR)])
    insert_hour = history._insert_hour

    def refusing(conn: Connection, hour: datetime, *, exact: bool = False) -> None:
        if hour == T0:  # as a database refuses a figure it cannot hold, at every try
            raise DataError("INSERT INTO sample_hours ...", {}, ValueError("value out of range"))
        insert_hour(conn, hour, exact=exact)

    monkeypatch.setattr(history, "_insert_hour", refusing)
    outcome = run(engine, SETTINGS, T0 + 3 * HOUR)

    assert (outcome.hours, outcome.hours_skipped) == (1, [T0])
    assert [hour["hour"] for hour in hours_of(engine, "https.duration_ms")] == [T0 + HOUR]
    assert "the samples of the hour from 2026-11-24T21:00:00+00:00 cannot be rolled up" in caplog.text
    later = run(engine, SETTINGS, T0 + 4 * HOUR)
    assert (later.hours, later.hours_skipped) == (1, [])  # passed over once, not at every run
