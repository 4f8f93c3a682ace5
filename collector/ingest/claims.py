"""Claiming messages by their identity ``(site, agent, boot, seq)``: the database decides which are new, so a
message delivered twice (QoS 1, a retained copy, two collectors on one PostgreSQL) is applied once.

A message older than the store's messages mark (``collector/store/horizons.py``) is not claimed: its
identity, if it was ever stored, was dropped by retention, so it counts as a duplicate (docs/retention.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from collector.ingest.batch import Batch
from collector.store.database import driver_value
from collector.store.horizons import messages_kept_from
from collector.store.schema import messages
from collector.store.unnest import literal
from protocol import Envelope

#: Identities per INSERT statement (7 parameters each).
_IDENTITY_ROWS = 500
_CLAIM_VALUES = "INSERT INTO messages (site, agent, boot, seq, kind, received_at, ts) VALUES "
_CLAIM_POSTGRES = (
    "INSERT INTO messages (site, agent, boot, seq, kind, received_at, ts) SELECT * FROM unnest("
    "%s::varchar[], %s::varchar[], %s::varchar[], %s::bigint[], %s::varchar[], %s::timestamptz[], "
    "%s::timestamptz[])"
)
_CLAIM_AGAIN = " ON CONFLICT DO NOTHING RETURNING site, agent, boot, seq"


class ClaimRacedError(Exception):
    """A claim made without a savepoint met an identity stored already: the transaction is lost, and its
    batch is to be stored again, carefully."""


def claim(
    conn: Connection, valid: list[tuple[Envelope, datetime, bool]], batch: Batch, *, careful: bool = True
) -> None:
    """Insert each identity unless stored already; ``batch.fresh`` gets the ones this insert won.

    Not ``careful``, a batch whose every message lies past its boot's highest seq received live
    (``batch.boots``), and is no retained copy, cannot have been stored before: it is inserted without the
    savepoint that lets a conflict be taken back (two round trips fewer). Should the database find one
    stored all the same (a retained copy claimed once and delivered live later), ``ClaimRacedError`` is
    raised, the whole transaction is lost, and the caller stores the batch again, ``careful``.
    """
    bind = driver_value(conn, messages.c.received_at)
    bound: dict[datetime, Any] = {}  # the messages of one frame share their time: convert it once
    seen: set[tuple[str, str, str, int]] = set()
    rows: list[tuple[Any, ...]] = []
    kept_from = messages_kept_from(conn)
    for item in valid:
        envelope, received_at, _retained = item
        identity = (envelope.site, envelope.agent, envelope.boot, envelope.seq)
        if identity in seen or (kept_from is not None and envelope.moment < kept_from):
            batch.duplicates += 1
            continue
        seen.add(identity)
        batch.received.append(item)
        when = bound.get(received_at)
        if when is None:
            when = bound[received_at] = bind(received_at)
        rows.append((*identity, envelope.kind, when, bind(envelope.moment)))
    plain = not careful and _past_every_mark(batch)
    lost = _insert_identities(conn, rows, plain=plain)
    if not lost:  # the common case: every one is new
        batch.fresh.extend(batch.received)
        return
    for item in batch.received:
        envelope = item[0]
        if (envelope.site, envelope.agent, envelope.boot, envelope.seq) in lost:
            batch.duplicates += 1
        else:
            batch.fresh.append(item)


def _past_every_mark(batch: Batch) -> bool:
    """True when every message received is live and past the highest seq stored for its (known) boot."""
    boots = batch.boots
    for envelope, _received_at, retained in batch.received:
        stored = boots.get((envelope.site, envelope.agent, envelope.boot))
        highest = None if stored is None else stored[0]
        if retained or highest is None or envelope.seq <= highest:
            return False
    return True


def _insert_identities(
    conn: Connection, rows: list[tuple[Any, ...]], *, plain: bool = False
) -> set[tuple[str, str, str, int]]:
    """Insert the identities not stored yet; return those this transaction did not insert.

    ``rows`` are ``(site, agent, boot, seq, kind, received_at, ts)`` as the driver takes them. Each chunk is
    one plain ``INSERT`` of many rows, inside a savepoint: when it succeeds (the common case) every row is
    ours. When it breaks the key (some were stored already, or another collector got there first) the
    savepoint is rolled back and the chunk inserted again with ``ON CONFLICT DO NOTHING RETURNING``, which
    names the rows this transaction won. Either way the database decides. The common case avoids a result
    row per message, which costs a round trip on PostgreSQL and, on SQLite, releases and retakes the GIL
    once per row, and PostgreSQL's speculative insertion for ``ON CONFLICT``, a third of the claim's cost.
    ``plain``: no savepoint; a broken key raises ``ClaimRacedError`` (see ``claim``).
    """
    postgres = conn.dialect.name == "postgresql"
    row_marks = "(" + ", ".join(["?"] * 7) + ")"
    lost: set[tuple[str, str, str, int]] = set()
    for start in range(0, len(rows), _IDENTITY_ROWS):
        chunk = rows[start : start + _IDENTITY_ROWS]
        # Driver SQL: SQLAlchemy would compile a statement of many VALUES rows on every call.
        sql: str
        flat: tuple[Any, ...]
        if postgres:
            # One array per column: the same short statement every time, which psycopg parses once
            # (a statement of 3,000 placeholders was parsed again, in Python, at every batch).
            sql = _CLAIM_POSTGRES
            flat = _claim_arrays(chunk)
        else:
            sql = _CLAIM_VALUES + ", ".join([row_marks] * len(chunk))
            flat = tuple(value for row in chunk for value in row)
        if plain:
            try:
                conn.exec_driver_sql(sql, flat)
            except IntegrityError as exc:
                raise ClaimRacedError from exc
            continue
        savepoint = conn.begin_nested()
        try:
            conn.exec_driver_sql(sql, flat)
        except IntegrityError:
            savepoint.rollback()
        else:
            savepoint.commit()
            continue
        result = conn.exec_driver_sql(sql + _CLAIM_AGAIN, flat)
        won = {(r[0], r[1], r[2], r[3]) for r in result}
        lost.update(identity for identity in (row[:4] for row in chunk) if identity not in won)
    return lost


def _claim_arrays(rows: list[tuple[Any, ...]]) -> tuple[str, ...]:
    """The claim's seven columns as PostgreSQL array literals, for ``_CLAIM_POSTGRES``."""
    columns = zip(*rows, strict=True)
    kinds = ("varchar", "varchar", "varchar", "bigint", "varchar", "timestamptz", "timestamptz")
    return tuple(literal(values, kind) for values, kind in zip(columns, kinds, strict=True))
