"""Hourly history of the samples: count, minimum, maximum and sum per device, metric and hour, kept long after
the samples themselves are dropped, for the device charts (docs/retention.md).

An hour is rolled up once, when it has been over for ``history.lag`` (samples that come later than that are
in the raw samples only), in one transaction with the mark that says how far the roll-up has come, so a run
cut short does that hour again and never twice. An hour whose total passes a float's range (samples near the
largest float, stored before ingest bounded the values) is kept with an infinite total, on both databases.
"""

from __future__ import annotations

import logging
import math
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Numeric,
    String,
    Table,
    case,
    cast,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from collector.store import partitions
from collector.store.database import as_written, write_transaction
from collector.store.horizons import HISTORY, mark, set_mark
from collector.store.schema import UTCDateTime, metadata, samples

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
#: The largest float, exactly, for comparing an exact sum with it.
_LARGEST = Decimal(sys.float_info.max)

sample_hours = Table(
    "sample_hours",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("agent", String(64), primary_key=True),
    Column("device", String(64), primary_key=True),
    Column("metric", String(128), primary_key=True),
    Column("hour", UTCDateTime, primary_key=True),
    Column("samples", BigInteger, nullable=False),
    Column("minimum", Float, nullable=False),
    Column("maximum", Float, nullable=False),
    Column("total", Float, nullable=False),
)
Index("ix_sample_hours_hour", sample_hours.c.hour)


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


@dataclass
class Rolled:
    """What one roll-up did."""

    #: Hours rolled up into the history.
    hours: int = 0
    #: Hours passed over because their samples could not be rolled up (a data error): each one logged.
    skipped: list[datetime] = field(default_factory=list)


def roll_up(engine: Engine, now: datetime, *, lag: timedelta, kept_from: datetime) -> Rolled:
    """Roll up every hour over for ``lag`` and not rolled up yet, from ``kept_from`` (the history's first
    kept moment) at the earliest. Each hour is one transaction that reads the mark again, so two runs at once
    (a command beside the collector) never do an hour twice. The first run starts from the earliest sample
    stored. An hour whose samples the database refuses to roll up (a data error, which would come back at
    every run) is logged and passed over, so that one hour never stops retention; the database gone or a lock
    held too long still stop the run, to be tried again at the next one."""
    end = hour_of(now - lag)
    rolled = Rolled()
    while True:
        with write_transaction(engine) as conn:
            start = mark(conn, HISTORY)
            if start is None:
                earliest = _earliest_sample(conn)
                start = hour_of(earliest) if earliest is not None else end
            start = max(start, hour_of(kept_from))
            if start >= end:
                return rolled
            try:
                with conn.begin_nested():
                    _roll_up_hour(conn, start)
            except (DataError, IntegrityError):
                log.exception(
                    "history: the samples of the hour from %s cannot be rolled up; the hour is left out of "
                    "the history (its samples stay until their days are over) and the roll-up goes on",
                    start.isoformat(),
                )
                rolled.skipped.append(start)
            else:
                rolled.hours += 1
            set_mark(conn, HISTORY, start + HOUR)


def _earliest_sample(conn: Connection) -> datetime | None:
    """When the oldest sample stored was taken, roughly on PostgreSQL (the start of its oldest day partition,
    or the oldest in the default partition): no scan of every partition for it."""
    if conn.dialect.name != "postgresql":
        found: datetime | None = conn.execute(select(func.min(samples.c.ts))).scalar_one_or_none()
        return found
    candidates = [partitions.day_start(day) for day in sorted(partitions.days(conn, "samples"))[:1]]
    oldest = conn.exec_driver_sql("SELECT min(ts) FROM samples_default").scalar_one_or_none()
    if oldest is not None:
        candidates.append(oldest)
    return min(candidates) if candidates else None


def _roll_up_hour(conn: Connection, hour: datetime) -> None:
    """Roll up ``hour``. PostgreSQL's float sum fails past a float's range (SQLite's becomes an infinity), so
    on PostgreSQL an hour whose sum does is summed again exactly; only such an hour pays for the exact sum."""
    if conn.dialect.name != "postgresql":
        _insert_hour(conn, hour)
        infinite = ~sample_hours.c.total.between(-sys.float_info.max, sys.float_info.max)
        overflowed = select(sample_hours.c.hour).where(sample_hours.c.hour == hour, infinite).limit(1)
        if conn.execute(overflowed).first() is None:
            return
    else:
        try:
            with conn.begin_nested():
                _insert_hour(conn, hour)
        except DataError:  # "value out of range: overflow"
            _insert_hour(conn, hour, exact=True)
        else:
            return
    log.warning(
        "history: the samples of the hour from %s add up past a float's range; a total past it is kept as an "
        "infinity, and its mean shows as null",
        hour.isoformat(),
    )


def _exact_total() -> ColumnElement[Any]:
    """PostgreSQL: the sum in ``numeric``, which does not overflow, as a float; an infinity past its range."""
    total = func.sum(cast(samples.c.value, Numeric()))
    largest = literal(_LARGEST, Numeric())
    return case(
        (total > largest, literal(math.inf, Float())),
        (total < -largest, literal(-math.inf, Float())),
        else_=cast(total, Float()),
    )


def _insert_hour(conn: Connection, hour: datetime, *, exact: bool = False) -> None:
    keys = (samples.c.site, samples.c.agent, samples.c.device, samples.c.metric)
    grouped = (
        select(
            *keys,
            literal(hour, UTCDateTime()).label("hour"),
            func.count().label("samples"),
            func.min(samples.c.value).label("minimum"),
            func.max(samples.c.value).label("maximum"),
            (_exact_total() if exact else func.sum(samples.c.value)).label("total"),
        )
        .where(samples.c.ts >= as_written(conn, samples.c.ts, hour))
        .where(samples.c.ts < as_written(conn, samples.c.ts, hour + HOUR))
        .group_by(*keys)
    )
    columns = ["site", "agent", "device", "metric", "hour", "samples", "minimum", "maximum", "total"]
    conn.execute(insert(sample_hours).from_select(columns, grouped))


def device_history(
    conn: Connection,
    site: str,
    agent: str,
    device: str,
    metric: str,
    *,
    since: datetime,
    until: datetime,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """The hours of one device's metric from ``since``'s hour to ``until`` (the first ``limit`` of them), in
    time order: hour, samples, minimum, maximum, mean."""
    query = (
        select(sample_hours)
        .where(
            sample_hours.c.site == site,
            sample_hours.c.agent == agent,
            sample_hours.c.device == device,
            sample_hours.c.metric == metric,
            sample_hours.c.hour >= hour_of(since),
            sample_hours.c.hour < until,
        )
        .order_by(sample_hours.c.hour)
        .limit(limit)
    )
    return [
        {
            "hour": row.hour,
            "samples": row.samples,
            "minimum": row.minimum,
            "maximum": row.maximum,
            "mean": row.total / row.samples,
        }
        for row in conn.execute(query)
    ]


def device_metrics(
    conn: Connection, site: str, agent: str, device: str, *, since: datetime, until: datetime, limit: int
) -> list[dict[str, Any]]:
    """The metrics one device has hours of from ``since``'s hour to ``until`` (the first ``limit`` by name):
    metric, hours, first and last hour. Read by the key's prefix, so it costs the device's hours only."""
    hour = sample_hours.c.hour
    query = (
        select(
            sample_hours.c.metric,
            func.count().label("hours"),
            func.min(hour).label("first"),
            func.max(hour).label("last"),
        )
        .where(
            sample_hours.c.site == site,
            sample_hours.c.agent == agent,
            sample_hours.c.device == device,
            hour >= hour_of(since),
            hour < until,
        )
        .group_by(sample_hours.c.metric)
        .order_by(sample_hours.c.metric)
        .limit(limit)
    )
    return [dict(row._mapping) for row in conn.execute(query)]
