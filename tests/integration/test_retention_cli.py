"""``hezo-collector retention run|status`` as a user runs them, on a store holding rows past their days."""

import json
import sqlite3
from pathlib import Path

import pytest

from collector.ingest.pipeline import Ingest
from collector.metrics import Metrics
from tests.support.collector import T0, FakeAgent, migrated_engine, run_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A store holding one telemetry message of T0 (days ago), kept for 1 day (samples) and 2 (identities)."""
    engine = migrated_engine(tmp_path)
    Ingest(engine, Metrics(), "hezo/v1").handle(*FakeAgent().telemetry(at=T0, count=3), T0)
    engine.dispose()
    path = tmp_path / "collector.yaml"
    path.write_text(
        f"store:\n  url: sqlite:///{tmp_path / 'collector.db'}\n"
        "retention:\n  samples_days: 1\n  messages_days: 2\n"
    )
    return path


def test_retention_run_deletes_what_is_past_its_days_and_status_shows_it(
    tmp_path: Path, config: Path
) -> None:
    result = run_cli(tmp_path, "--config", str(config), "retention", "run", "--json")
    assert result.returncode == 0, result.stderr
    done = json.loads(result.stdout)
    assert (done["rows deleted"]["samples"], done["rows deleted"]["messages"]) == (3, 1)

    result = run_cli(tmp_path, "--config", str(config), "retention", "status", "--json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    rows = {row["table"]: row["rows"] for row in shown["tables"]}
    assert (rows["samples"], rows["messages"], rows["sample_hours"]) == (0, 0, 1)
    assert shown["marks"]["messages kept from"] is not None


def test_retention_keys_that_contradict_each_other_exit_2_naming_them(tmp_path: Path) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text("retention:\n  samples_days: 30\n  messages_days: 7\n")
    result = run_cli(tmp_path, "--config", str(path), "retention", "status")
    assert result.returncode == 2
    assert "messages_days (7) must be at least samples_days (30)" in result.stderr


def test_retention_run_on_a_store_locked_too_long_exits_1_saying_so(tmp_path: Path, config: Path) -> None:
    holder = sqlite3.connect(tmp_path / "collector.db")
    try:
        holder.execute("BEGIN IMMEDIATE")  # another writer, holding the store's write lock
        result = run_cli(tmp_path, "--config", str(config), "retention", "run")
    finally:
        holder.rollback()
        holder.close()
    assert result.returncode == 1
    assert "retention stopped: database is locked; run it again" in result.stderr
