"""Many rows in one PostgreSQL statement: each column as one array, joined back into rows by ``unnest``.

An ``executemany`` of N updates is N statements for the server to plan and run, even pipelined; one
``UPDATE ... FROM unnest(...)`` is one, and so is a ``DELETE ... USING unnest(...)``. The arrays go as
array literals made here in one join per column: psycopg adapts a list element by element in Python, which
costs more than the statement.

Every text element is double-quoted (so an agent named ``null`` stays a name) and may hold neither a quote nor
a backslash: what goes through here is ids (the protocol bounds them to ``[a-z0-9][a-z0-9_-]``), integers
and times. ``literal`` refuses anything else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

#: PostgreSQL's element types this module writes literals for.
TYPES = ("varchar", "bigint", "timestamptz")


def literal(values: Sequence[Any], kind: str) -> str:
    """``values`` as a PostgreSQL array literal of ``kind`` (one of ``TYPES``)."""
    if kind == "bigint":
        if not all(type(value) is int for value in values):
            raise TypeError("a bigint array takes integers only")
        return "{" + ",".join(map(str, values)) + "}"
    if kind == "timestamptz":
        stamps: dict[Any, str] = {}  # the rows of a batch share a few times: each written once
        texts = []
        for value in values:
            stamp = stamps.get(value)
            if stamp is None:
                stamp = stamps[value] = _stamp(value)
            texts.append(stamp)
    elif kind == "varchar":
        texts = list(values)
    else:
        raise ValueError(f"no array literal for {kind}")
    for text in texts:
        if not isinstance(text, str) or '"' in text or "\\" in text:
            raise ValueError(f"not an id, a number or a time: {text!r}")
    return '{"' + '","'.join(texts) + '"}' if texts else "{}"


def _stamp(value: Any) -> str:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise TypeError(f"a timestamptz array takes aware datetimes only, got {value!r}")
    return value.isoformat()


def _source(columns: Sequence[tuple[str, str]]) -> str:
    arrays = ", ".join(f"%s::{kind}[]" for _name, kind in columns)
    names = ", ".join(name for name, _kind in columns)
    return f"unnest({arrays}) AS v({names})"


def _arrays(columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]) -> tuple[str, ...]:
    by_column = list(zip(*rows, strict=True))
    return tuple(literal(values, kind) for values, (_name, kind) in zip(by_column, columns, strict=True))


def update_many(
    conn: Connection,
    table: str,
    *,
    columns: Sequence[tuple[str, str]],
    keys: Sequence[str],
    sets: Mapping[str, str],
    rows: Sequence[Sequence[Any]],
) -> None:
    """``UPDATE table AS t SET column = expression ... FROM unnest(...) AS v WHERE t.key = v.key ...``.

    ``columns``: (name, element type) of each value in a row, in order; ``keys``: those that find the row;
    ``sets``: each column to set and its SQL over ``t`` (the row as it is) and ``v`` (the values given), such
    as ``{"received": "t.received + v.received"}``. Names and expressions are the caller's own, never data.
    """
    if not rows:
        return
    where = " AND ".join(f"t.{key} = v.{key}" for key in keys)
    assignments = ", ".join(f"{column} = {expression}" for column, expression in sets.items())
    sql = f"UPDATE {table} AS t SET {assignments} FROM {_source(columns)} WHERE {where}"  # noqa: S608
    conn.exec_driver_sql(sql, _arrays(columns, rows))


def delete_many(
    conn: Connection, table: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]
) -> None:
    """``DELETE FROM table AS t USING unnest(...) AS v WHERE`` every column of ``columns`` matches."""
    if not rows:
        return
    where = " AND ".join(f"t.{name} = v.{name}" for name, _kind in columns)
    sql = f"DELETE FROM {table} AS t USING {_source(columns)} WHERE {where}"  # noqa: S608
    conn.exec_driver_sql(sql, _arrays(columns, rows))
