"""Fixtures for the collector's unit tests: a migrated store of the test's own, and fresh metrics.

``engine`` is a SQLite file and, in a second run of each test, a schema of its own on the local PostgreSQL
(a real peer, see tests/support/postgres.py): the store and ingest behave the same on both.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from collector.metrics import Metrics
from tests.support.collector import migrated_engine
from tests.support.postgres import postgres_schema


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        sqlite = migrated_engine(tmp_path)
        yield sqlite
        sqlite.dispose()
        return
    with postgres_schema() as postgres:
        yield postgres


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()
