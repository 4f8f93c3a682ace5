"""Fixtures for the collector's unit tests: a migrated SQLite store of the test's own, and fresh metrics."""

from pathlib import Path

import pytest
from sqlalchemy import Engine

from collector.metrics import Metrics
from tests.support.collector import migrated_engine


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return migrated_engine(tmp_path)


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()
