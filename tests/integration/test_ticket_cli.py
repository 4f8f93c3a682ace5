"""``hezo-collector tickets|contracts|maintenance`` as an engineer runs them, on a real store file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from collector.incidents.engine import IncidentEngine
from collector.ingest.pipeline import Ingest
from collector.metrics import Metrics
from tests.support.collector import T0, Clock, FakeAgent, migrated_engine
from tests.support.mosquitto import ROOT

pytestmark = pytest.mark.integration

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(tmp_path: Path) -> Run:
    engine = migrated_engine(tmp_path)
    ingest = Ingest(engine, Metrics(), "hezo/v1")
    agent = FakeAgent()
    ingest.handle(*agent.birth(), T0)
    ingest.handle(*agent.state("down", at=T0), T0)
    IncidentEngine(engine, confirm_window=60, now=Clock(T0 + timedelta(minutes=1))).evaluate()
    engine.dispose()
    config = tmp_path / "collector.yaml"
    config.write_text(f"store:\n  url: sqlite:///{tmp_path / 'collector.db'}\n")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "collector", "--config", str(config), *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=60,
            check=False,
        )

    return run


def test_an_engineer_takes_a_ticket_through_a_replacement(cli: Run) -> None:
    run = cli
    for step in ("respond", "confirm", "ship", "deliver", "return", "close"):
        result = run("tickets", step, "HZ-000001", "--by", "ewa")
        assert result.returncode == 0, result.stderr
    result = run("tickets", "show", "HZ-000001", "--json")
    ticket = json.loads(result.stdout)
    assert ticket["status"] == "closed"
    assert [entry["kind"] for entry in ticket["entries"] if not entry["kind"].startswith("sla-")] == [
        "opened",
        "respond",
        "confirm",
        "ship",
        "deliver",
        "return",
        "close",
    ]


def test_an_illegal_step_exits_3_with_the_reason(cli: Run) -> None:
    run = cli
    result = run("tickets", "deliver", "HZ-000001", "--by", "ewa")
    assert result.returncode == 3
    assert (
        "hezo-collector: ticket HZ-000001 is open: 'deliver' is allowed only when it is shipped"
        in result.stderr
    )


def test_a_priority_lowered_by_the_cli_is_in_the_timeline_and_the_same_again_exits_3(cli: Run) -> None:
    run = cli
    result = run("tickets", "priority", "HZ-000001", "high", "--text", "works, but the picture freezes")
    assert result.returncode == 0, result.stderr
    assert "Priority changed from Critical to High by local:" in result.stdout
    again = run("tickets", "priority", "HZ-000001", "high")
    assert again.returncode == 3
    assert "hezo-collector: ticket HZ-000001 is high already" in again.stderr
    unknown = run("tickets", "priority", "HZ-000001", "urgent")
    assert unknown.returncode == 2
    assert "invalid choice: 'urgent'" in unknown.stderr


def test_show_prints_what_a_phone_call_needs(cli: Run) -> None:
    run = cli
    result = run("tickets", "show", "HZ-000001")
    assert result.returncode == 0, result.stderr
    assert "HZ-000001  CRITICAL  open" in result.stdout
    assert "serial   2034FH1002R2   contract HZ-2026-0042" in result.stdout
    assert "response due 2026-11-24 22:01 UTC" in result.stdout


def test_a_ticket_opened_by_hand_is_low(cli: Run) -> None:
    run = cli
    result = run(
        "tickets", "open", "--site", "hq", "--summary", "Teams room layout?", "--by", "ewa", "--json"
    )
    assert result.returncode == 2  # open has no --json: argparse refuses it
    result = run("tickets", "open", "--site", "hq", "--summary", "Teams room layout?", "--by", "ewa")
    assert result.returncode == 0, result.stderr
    assert "HZ-000002  LOW  open" in result.stdout


def test_contracts_and_coverage_warn_about_an_expired_contract(cli: Run) -> None:
    run = cli
    result = run("contracts", "add", "HZ-2026-0042", "--start", "2020-05-01", "--years", "3")
    assert result.returncode == 0, result.stderr
    result = run("contracts", "coverage", "--problems", "--json")
    [row] = json.loads(result.stdout)
    assert (row["device"], row["state"], row["ends"]) == ("rally-bar-1", "expired", "2023-05-01")


def test_maintenance_windows_are_added_listed_and_refused_with_a_reason(cli: Run) -> None:
    run = cli
    result = run(
        "maintenance",
        "add",
        "night",
        "--site",
        "hq",
        "--days",
        "mon,tue",
        "--start",
        "22:00",
        "--end",
        "06:00",
    )
    assert result.returncode == 0, result.stderr
    result = run("maintenance", "list")
    assert "night" in result.stdout
    assert "mon,tue" in result.stdout
    result = run("maintenance", "add", "bad", "--site", "hq", "--from", "2026-12-01T10:00")
    assert result.returncode == 2
    assert "needs a time zone" in result.stderr


def test_local_changes_are_recorded_as_the_os_user_whatever_by_says(cli: Run) -> None:
    import getpass

    result = cli("tickets", "respond", "HZ-000001", "--by", "somebody-else")
    assert result.returncode == 0, result.stderr
    me = f"local:{getpass.getuser()}"
    assert f"--by is ignored: the change is recorded as {me}" in result.stderr
    ticket = json.loads(cli("tickets", "show", "HZ-000001", "--json").stdout)
    assert ticket["entries"][-1]["by"] == me
    assert cli("contracts", "add", "C-9", "--start", "2026-01-01", "--years", "1").returncode == 0
    audit = json.loads(cli("audit", "list", "--json").stdout)
    assert {(line["event"], line["actor"]) for line in audit} >= {
        ("ticket-respond", me),
        ("contract-add", me),
    }
