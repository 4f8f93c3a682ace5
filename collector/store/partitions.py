"""Daily partitions of ``messages`` and ``samples`` on PostgreSQL (native declarative partitioning by ``ts``).

Each table has one partition per UTC day, ``<table>_pYYYYMMDD``, made a few days ahead, and a default
partition, ``<table>_default``, for rows outside every day made (an old store's rows after the upgrade, a
sample whose agent clock is far off): an insert never fails for want of a partition. A day made later takes
its rows out of the default partition first. Expiring a day is dropping its partition: no row is read,
nothing is left for VACUUM. Names and bounds are made here from dates, never from input.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Connection

#: The tables partitioned by day on PostgreSQL.
PARTITIONED = ("messages", "samples")
_DAY = re.compile(r"^(?P<table>messages|samples)_p(?P<day>\d{8})$")
#: How long a drop waits for the tables' locks (a running batch) before it gives up until the next run.
LOCK_TIMEOUT = "10s"


def is_partition(name: str) -> bool:
    """Whether ``name`` is one of the partitions made here (the schema's tables are their parents)."""
    return bool(_DAY.match(name)) or name in {f"{table}_default" for table in PARTITIONED}


def partition_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def days(conn: Connection, table: str) -> dict[date, str]:
    """The day partitions of ``table`` there are, by day."""
    rows = conn.exec_driver_sql(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(%s)",
        (table,),
    )
    found: dict[date, str] = {}
    for (name,) in rows:
        matched = _DAY.match(name)
        if matched:
            found[datetime.strptime(matched["day"], "%Y%m%d").replace(tzinfo=UTC).date()] = name
    return found


def _literal(moment: datetime) -> str:
    # DDL takes no bind parameters; the bound is made here from a date, so it is always this shape.
    return f"'{moment.isoformat()}'"


def make_day(conn: Connection, table: str, day: date) -> None:
    """Make ``table``'s partition for ``day``, moving in the rows the default partition holds for it."""
    name = partition_name(table, day)
    start, end = day_start(day), day_start(day + timedelta(days=1))
    # The default partition first, so that no row for this day slips into it between the move and the attach.
    conn.exec_driver_sql(f"LOCK TABLE {table}_default IN ACCESS EXCLUSIVE MODE")
    conn.exec_driver_sql(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    conn.exec_driver_sql(
        f"WITH moved AS (DELETE FROM {table}_default WHERE ts >= %s AND ts < %s RETURNING *) "  # noqa: S608
        f"INSERT INTO {name} SELECT * FROM moved",
        (start, end),
    )
    bounds = f"FROM ({_literal(start)}) TO ({_literal(end)})"
    conn.exec_driver_sql(f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES {bounds}")


def ensure_days(conn: Connection, table: str, first: date, last: date) -> list[date]:
    """Make the partitions of ``table`` from ``first`` to ``last`` (inclusive) that are missing."""
    have = days(conn, table)
    made: list[date] = []
    day = first
    while day <= last:
        if day not in have:
            make_day(conn, table, day)
            made.append(day)
        day += timedelta(days=1)
    return made


def drop_days_before(conn: Connection, table: str, horizon: date) -> list[date]:
    """Drop the partitions of ``table`` for days before ``horizon``; waits ``LOCK_TIMEOUT`` at most."""
    conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    dropped: list[date] = []
    for day, name in sorted(days(conn, table).items()):
        if day < horizon:
            conn.exec_driver_sql(f"DROP TABLE {name}")
            dropped.append(day)
    return dropped


def delete_default_before(conn: Connection, table: str, before: datetime, limit: int) -> int:
    """Delete at most ``limit`` rows older than ``before`` from ``table``'s default partition."""
    result = conn.exec_driver_sql(
        f"DELETE FROM {table}_default WHERE ctid IN "  # noqa: S608
        f"(SELECT ctid FROM {table}_default WHERE ts < %s LIMIT %s)",
        (before, limit),
    )
    return int(result.rowcount)
