"""Samples, the hot path of ingest: thousands of rows per batch, written the fastest way each database has."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from collector.store.database import driver_value
from collector.store.schema import samples
from protocol import Envelope, parse_ts

_SAMPLE_COLUMNS = "site, agent, boot, seq, idx, device, metric, value, ts"
#: Rows per INSERT statement on SQLite (9 parameters each; SQLite allows 32,766 per statement).
_SQLITE_ROWS = 1000


def insert_samples(conn: Connection, telemetry: list[Envelope]) -> None:
    """Insert the samples of these telemetry messages the fast way for the database.

    The hot path of ingest: thousands of rows per batch. SQLAlchemy's per-row parameter processing costs more
    than the insert itself, so rows go to the driver directly: ``COPY`` on PostgreSQL, multi-row INSERTs on
    SQLite, with ``ts`` converted by the column type's own bind processor and, on SQLite, sqlite3's own
    adapter, once per distinct value (the stored form stays the one SQLAlchemy reads back). Only rows of
    messages this transaction claimed get here, so no key conflicts.
    """
    bind = driver_value(conn, samples.c.ts)
    seen: dict[str, Any] = {}  # the samples of one poll share their time: convert each text once

    def moment(text: str) -> Any:
        value = seen.get(text)
        if value is None:
            value = seen[text] = bind(parse_ts(text))
        return value

    if conn.dialect.name == "postgresql":
        _copy_samples(conn, telemetry, moment)
        return
    rows: list[tuple[Any, ...]] = []
    for envelope in telemetry:
        _add_sample_rows(rows, envelope)
    # Many rows per statement, not executemany: sqlite3 releases the GIL around every step, and each time the
    # network thread takes it, the writer waits for it again (a convoy that costs more than the inserts).
    for start in range(0, len(rows), _SQLITE_ROWS):
        chunk = rows[start : start + _SQLITE_ROWS]
        values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
        flat: list[Any] = []
        for row in chunk:
            flat += row
            flat[-1] = moment(row[8])
        conn.exec_driver_sql(f"INSERT INTO samples ({_SAMPLE_COLUMNS}) VALUES {values}", tuple(flat))  # noqa: S608


#: COPY's text format: these four characters are written as escapes (a NUL is refused by PostgreSQL anyway).
#: Messages whose samples go to the server in one write of a COPY.
_COPY_PART = 100
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_samples(conn: Connection, telemetry: list[Envelope], moment: Callable[[str], Any]) -> None:
    """``COPY samples`` in PostgreSQL's text format, the whole batch formatted in one pass.

    Site, agent, boot and device are ids (letters, digits, ``_``, ``-``), seq and idx integers and value a
    float (``repr`` reads back exactly, ``nan`` and ``inf`` included), so only the metric name, free text of
    the agent's, can hold a character COPY reads as syntax; it is escaped, once per distinct name. Formatting
    here costs a fifth of psycopg's ``write_row`` per row, which adapts every value of every row on its own.
    """
    metrics: dict[str, str] = {}
    stamps: dict[str, str] = {}
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(f"COPY samples ({_SAMPLE_COLUMNS}) FROM STDIN") as copy:
            # Sent a part at a time: the server stores one part while the next is formatted.
            for start in range(0, len(telemetry), _COPY_PART):
                lines: list[str] = []
                for envelope in telemetry[start : start + _COPY_PART]:
                    prefix = f"{envelope.site}\t{envelope.agent}\t{envelope.boot}\t{envelope.seq}\t"
                    for idx, item in enumerate(envelope.body["samples"]):
                        metric = item["metric"]
                        name = metrics.get(metric)
                        if name is None:
                            name = metrics[metric] = metric.translate(_COPY_ESCAPES)
                        ts = item["ts"]
                        stamp = stamps.get(ts)
                        if stamp is None:
                            stamp = stamps[ts] = moment(ts).isoformat()
                        value = float(item["value"])
                        lines.append(f"{prefix}{idx}\t{item['device']}\t{name}\t{value!r}\t{stamp}\n")
                copy.write("".join(lines))
    finally:
        cursor.close()


def _add_sample_rows(rows: list[tuple[Any, ...]], envelope: Envelope) -> None:
    site, agent, boot, seq = envelope.site, envelope.agent, envelope.boot, envelope.seq
    rows.extend(
        [
            (site, agent, boot, seq, index, item["device"], item["metric"], float(item["value"]), item["ts"])
            for index, item in enumerate(envelope.body["samples"])
        ]
    )
