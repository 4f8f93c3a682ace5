"""The collector's database: the engine (SQLite by default, or PostgreSQL), write transactions, migrations.

SQLite is the default (a file, nothing to install); PostgreSQL works with the same code. Migrations are
Alembic scripts in ``collector/store/migrations``, run in code (no alembic.ini).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Engine,
    Insert,
    String,
    Table,
    bindparam,
    column,
    create_engine,
    event,
    false,
    text,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, make_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

#: How long one SQLite statement waits for another process's write lock before it fails. Short on purpose:
#: the writer retries a failed store itself (with backoff), so a locked database costs one message at most
#: ``STORE_TRIES`` times this plus the retry delays before it is kept, and a stop waits for it once at most.
SQLITE_BUSY_TIMEOUT_MS = 2000


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the web page read while the ingest worker writes; the timeout rides out short write locks.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def engine_url(url: str | URL) -> URL:
    """``url`` parsed, with plain ``postgresql://`` mapped to the psycopg 3 driver (the one installed)."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str | URL, **options: Any) -> Engine:
    """An engine for ``url``; SQLite files get WAL and a busy timeout so readers and the writer coexist.

    ``postgresql://`` means ``postgresql+psycopg://``. ``options`` go to ``create_engine``.
    """
    engine = create_engine(engine_url(url), **options)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _tune_sqlite)
    return engine


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that writes: ``engine.begin()``, holding SQLite's write lock from the start.

    Python's sqlite3 module opens a transaction only at the first INSERT/UPDATE/DELETE, so a SAVEPOINT issued
    before that opens one of its own, and releasing the savepoint commits it: work meant to be all or nothing
    would be half committed. An explicit ``BEGIN IMMEDIATE`` makes the savepoints nest inside one real
    transaction, and takes the write lock at once, so a transaction that reads before it writes cannot find
    its snapshot stale. PostgreSQL needs none of this.
    """
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield conn


def alembic_config(engine: Engine) -> Config:
    """An Alembic configuration built in code: no alembic.ini, the scripts live in this package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Bring the database schema up to the latest migration (``alembic upgrade head``)."""
    command.upgrade(alembic_config(engine), "head")


def utcnow() -> datetime:
    """The current moment, timezone-aware UTC: the default clock of the collector."""
    return datetime.now(UTC)


def upsert_ignore(conn: Connection, table: Table) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` for the connection's database (SQLite or PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


def driver_value(conn: Connection, column: Any) -> Callable[[Any], Any]:
    """What the driver is handed for a value of ``column``: its type's bind processor, then, on SQLite, the
    adapter sqlite3 would apply itself (datetime -> text), so that a value shared by many rows is converted
    once instead of once per row."""
    bind = column.type.bind_processor(conn.dialect)
    adapt = None
    if conn.dialect.name == "sqlite":
        import sqlite3

        adapters: dict[tuple[type, type], Callable[[Any], Any]] = sqlite3.adapters
        adapt = adapters.get((datetime, sqlite3.PrepareProtocol))

    def convert(value: Any) -> Any:
        if bind is not None:
            value = bind(value)
        if adapt is not None and type(value) is datetime:
            value = adapt(value)
        return value

    return convert


def as_written(conn: Connection, column: Any, value: Any) -> BindParameter[Any]:
    """``value`` bound as ``driver_value`` writes it, to compare with the rows written that way (samples,
    message identities). On SQLite those datetimes are text of sqlite3's form (``...21:00:00+00:00``), which
    sorts before SQLAlchemy's (``...21:00:00.000000``) at the same second: bound as SQLAlchemy binds, a row
    at exactly the bound would fall on the wrong side of it."""
    if conn.dialect.name == "sqlite":
        return bindparam(None, driver_value(conn, column)(value), type_=String())
    return bindparam(None, value, type_=column.type)


def among(conn: Connection, columns: Sequence[Any], keys: Sequence[tuple[Any, ...]]) -> ColumnElement[bool]:
    """``(columns) IN keys``, for text keys. On PostgreSQL a semi-join on ``unnest`` of one array per column,
    which it hashes, and which compiles the same whatever the number of keys: a literal list of row values is
    compared row by row against every row read, and compiling thousands of them costs more than the query.
    SQLite takes the list."""
    if not keys:
        return false()
    if conn.dialect.name != "postgresql":
        return tuple_(*columns).in_(list(keys))
    names = [f"among_{next(_AMONG)}" for _ in columns]
    arrays = ", ".join(f"CAST(:{name} AS varchar[])" for name in names)
    listed = text(f"SELECT * FROM unnest({arrays})").bindparams(  # noqa: S608 - names are ours, values bound
        **{name: [key[index] for key in keys] for index, name in enumerate(names)}
    )
    return tuple_(*columns).in_(listed.columns(*(column(name) for name in names)))


#: Names for ``among``'s bound arrays, unique within any statement.
_AMONG = itertools.count()
