"""``hezo-collector`` as a user runs it: listings, config errors, and serve stopping cleanly."""

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from collector.incidents.engine import IncidentEngine
from collector.ingest.pipeline import Ingest
from collector.metrics import Metrics
from tests.support.collector import T0, Clock, FakeAgent, migrated_engine, run_cli
from tests.support.mosquitto import ROOT, Mosquitto, free_port, wait_port

pytestmark = pytest.mark.integration


@pytest.fixture
def config_with_a_ticket(tmp_path: Path) -> Path:
    engine = migrated_engine(tmp_path)
    ingest = Ingest(engine, Metrics(), "hezo/v1")
    agent = FakeAgent()
    ingest.handle(*agent.birth(), T0)
    ingest.handle(*agent.state("down", at=T0), T0)
    IncidentEngine(
        engine, confirm_window=60, critical_response_hours=1, now=Clock(T0 + timedelta(minutes=1))
    ).evaluate()
    engine.dispose()
    path = tmp_path / "collector.yaml"
    path.write_text(f"store:\n  url: sqlite:///{tmp_path / 'collector.db'}\n")
    return path


def test_tickets_list_json_shows_the_ticket_with_entries(tmp_path: Path, config_with_a_ticket: Path) -> None:
    result = run_cli(tmp_path, "--config", str(config_with_a_ticket), "tickets", "list", "--json")
    assert result.returncode == 0, result.stderr
    [ticket] = json.loads(result.stdout)
    assert ticket["number"] == "HZ-000001"
    assert (ticket["serial"], ticket["contract"], ticket["status"]) == (
        "2034FH1002R2",
        "HZ-2026-0042",
        "open",
    )
    assert ticket["response_due"] == "2026-11-24T22:01:00.000Z"
    assert [entry["kind"] for entry in ticket["entries"]] == ["opened"]


def test_devices_list_prints_a_table(tmp_path: Path, config_with_a_ticket: Path) -> None:
    result = run_cli(tmp_path, "--config", str(config_with_a_ticket), "devices", "list")
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header.split()[:3] == ["SITE", "AGENT", "DEVICE"]
    assert "rally-bar-1" in row
    assert "down" in row


def test_bad_config_prints_the_error_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text("incidents:\n  confirm_window: 0\n")
    result = run_cli(tmp_path, "--config", str(path), "migrate")
    assert result.returncode == 2
    assert f"{path}: incidents.confirm_window: " in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_answers_and_stops_cleanly_on_sigterm(tmp_path: Path, mosquitto: Mosquitto) -> None:
    port = free_port()
    path = tmp_path / "collector.yaml"
    path.write_text(
        f"mqtt: {{host: {mosquitto.host}, port: {mosquitto.port}}}\n"
        f"store: {{url: 'sqlite:///{tmp_path / 'collector.db'}'}}\n"
        f"web: {{host: 127.0.0.1, port: {port}}}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "collector", "--config", str(path), "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip() == f"hezo-collector: web page at http://127.0.0.1:{port}/"
        wait_port("127.0.0.1", port)
        # Healthy once connected to the broker; until then /healthz says why not.
        deadline = time.monotonic() + 20
        while (health := httpx.get(f"http://127.0.0.1:{port}/healthz")).status_code != 200:
            assert health.json()["reason"] == f"not connected to the broker {mosquitto.host}:{mosquitto.port}"
            assert time.monotonic() < deadline, health.text
            time.sleep(0.05)
        assert health.json() == {"status": "ok"}
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr


def test_rejected_list_json_shows_what_was_refused(tmp_path: Path) -> None:
    engine = migrated_engine(tmp_path)
    Ingest(engine, Metrics(), "hezo/v1").handle("hezo/v1/hq/room-101-pc/status", b'{"v": 2}', T0)
    engine.dispose()
    path = tmp_path / "collector.yaml"
    path.write_text(f"store:\n  url: sqlite:///{tmp_path / 'collector.db'}\n")
    result = run_cli(tmp_path, "--config", str(path), "rejected", "list", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        {
            "topic": "hezo/v1/hq/room-101-pc/status",
            "reason": "unsupported-version",
            "error": "unsupported schema version 2: this side speaks v1",
            "received_at": "2026-11-24T21:00:00.000Z",
            "payload": '{"v": 2}',
        }
    ]


@pytest.mark.parametrize(
    ("url", "shown", "reason"),
    [
        (
            "sqlite:///{tmp}/no-such-dir/collector.db",
            "sqlite:///{tmp}/no-such-dir/collector.db",
            "unable to open",
        ),
        (
            "postgresql+psycopg://hezo:s3cret-pw@127.0.0.1:1/hezo",
            "postgresql+psycopg://hezo:***@127.0.0.1:1/hezo",
            "",
        ),
    ],
    ids=["missing-directory", "postgresql-unreachable"],
)
@pytest.mark.parametrize("command", [["devices", "list"], ["tickets", "list", "--json"], ["migrate"]])
def test_a_store_that_cannot_be_opened_is_one_line_and_exit_1(
    tmp_path: Path, url: str, shown: str, reason: str, command: list[str]
) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text(f"store:\n  url: '{url.format(tmp=tmp_path)}'\n")
    result = run_cli(tmp_path, "--config", str(path), *command)
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"hezo-collector: cannot open the store {shown.format(tmp=tmp_path)}: ")
    assert reason in line
    assert "s3cret-pw" not in result.stderr


def test_tables_show_control_characters_escaped(tmp_path: Path) -> None:
    engine = migrated_engine(tmp_path)
    hostile = "hezo/v1/hq/\x1b[2J\x1b]0;owned\x07/status\x7f"
    Ingest(engine, Metrics(), "hezo/v1").handle(hostile, b"{}", T0)
    engine.dispose()
    path = tmp_path / "collector.yaml"
    path.write_text(f"store:\n  url: sqlite:///{tmp_path / 'collector.db'}\n")
    result = run_cli(tmp_path, "--config", str(path), "rejected", "list")
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout
    assert "\x07" not in result.stdout
    assert "\x7f" not in result.stdout
    assert r"hezo/v1/hq/\x1b[2J\x1b]0;owned\x07/status\x7f" in result.stdout
