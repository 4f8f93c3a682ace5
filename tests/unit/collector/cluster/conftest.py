"""The lease tests run on both stores: a SQLite file and a PostgreSQL schema of their own."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.support.collector import migrated_engine
from tests.support.postgres import postgres_schema


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = migrated_engine(tmp_path)
        yield engine
        engine.dispose()
    else:
        with postgres_schema() as engine:
            yield engine
