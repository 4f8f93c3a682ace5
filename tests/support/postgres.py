"""A PostgreSQL schema of the test's own on the local server, dropped afterwards.

The server is a real peer: 127.0.0.1:5432, user postgres, database ``test`` (override with
``HEZO_TEST_POSTGRES``). When it cannot be reached the test FAILS saying so: CI must not skip the PostgreSQL
half of the store tests. ``.ci/run`` starts an installed but stopped server (``scripts/system-deps.sh``).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from collector.store.database import make_engine, migrate

URL = os.environ.get("HEZO_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextmanager
def postgres_schema(*, migrated: bool = True) -> Iterator[Engine]:
    """An engine whose connections use a fresh schema with a random name (so tests and workers never meet),
    migrated to the latest revision; the schema is dropped at the end."""
    admin = create_engine(URL, isolation_level="AUTOCOMMIT")
    schema = f"hezo_test_{secrets.token_hex(6)}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except OperationalError as exc:
        admin.dispose()
        pytest.fail(
            f"PostgreSQL at {URL} is not reachable ({exc.orig}); the store tests need it: start it "
            "(scripts/system-deps.sh --postgres does) or point HEZO_TEST_POSTGRES at one",
            pytrace=False,
        )
    engine = make_engine(URL, connect_args={"options": f"-c search_path={schema}"})
    try:
        if migrated:
            migrate(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
