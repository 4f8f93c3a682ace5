"""How far back the store keeps each kind of row, as marks kept in the database (migration 0011_retention).

The mark that matters for exactly-once is ``messages``: the earliest envelope ``ts`` whose identity is still
stored. Every message older than it is taken for one already stored and forgotten (docs/retention.md), so a
copy delivered after its identity was dropped is still a duplicate. Ingest reads the mark in the transaction
that claims (``messages_kept_from``); retention moves it and drops the identities behind it in one
transaction. On PostgreSQL the two meet on an advisory lock, shared by claims and exclusive for retention, so
no claim can read the old mark and then insert into a partition being dropped. SQLite's single writer
serialises them already.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Connection, String, Table, func, select, update

from collector.store.database import upsert_ignore
from collector.store.schema import UTCDateTime, metadata

#: The advisory lock claims share and retention takes alone; its second key is the store's schema (a hash of
#: its name), since advisory locks are the database's: stores in two schemas of one database never meet.
HORIZON_LOCK = 0x68657A01
#: The advisory lock one retention run holds, so that two collectors on one store never run it at once.
RUN_LOCK = 0x68657A02


def store_lock(key: int) -> tuple[Any, Any]:
    """The two keys of the advisory lock ``key`` of this store (PostgreSQL)."""
    return key, func.hashtext(func.current_schema())


MESSAGES = "messages"
#: The hourly history is rolled up to (not including) this hour.
HISTORY = "history"

retention_marks = Table(
    "retention_marks",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("at", UTCDateTime, nullable=False),
)


def messages_kept_from(conn: Connection) -> datetime | None:
    """The earliest message ``ts`` still known by its identity, or None when nothing was ever dropped.

    Call it inside the claiming transaction, before inserting: on PostgreSQL it takes the shared side of
    ``HORIZON_LOCK`` until the transaction ends, so the mark read holds until the commit.
    """
    if conn.dialect.name == "postgresql":
        # Two statements: the mark must be read after the lock is granted, in a snapshot taken then (one
        # statement reading both would see the mark as it was when it began waiting).
        conn.execute(select(func.pg_advisory_xact_lock_shared(*store_lock(HORIZON_LOCK))))
    return mark(conn, MESSAGES)


def lock_out_claims(conn: Connection) -> None:
    """Wait until no claim is running, and hold new ones until this transaction ends (PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(*store_lock(HORIZON_LOCK))))


def mark(conn: Connection, name: str) -> datetime | None:
    """The mark ``name``, or None when it was never set."""
    found: datetime | None = conn.execute(
        select(retention_marks.c.at).where(retention_marks.c.name == name)
    ).scalar_one_or_none()
    return found


def set_mark(conn: Connection, name: str, at: datetime) -> None:
    """Set the mark ``name`` to ``at``."""
    conn.execute(upsert_ignore(conn, retention_marks).values(name=name, at=at))
    conn.execute(update(retention_marks).where(retention_marks.c.name == name).values(at=at))
