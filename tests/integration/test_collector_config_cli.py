"""``hezo-collector check-config``, and no command that uses the store without a configuration file."""

import json
from pathlib import Path

import pytest

from tests.support.collector import run_cli
from tests.support.mosquitto import ROOT

pytestmark = pytest.mark.integration

EXAMPLE = ROOT / "config" / "collector.example.yaml"


def test_the_shipped_example_checks_ok_and_says_what_it_sets_up(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "check-config", "--config", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{EXAMPLE}: OK\n")
    assert "store   sqlite:////var/lib/hezo-collector/collector.db" in result.stdout


def test_a_bad_key_names_the_file_and_the_key_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text("store:\n  url: sqlite:///c.db\nincidents:\n  confirm_windw: 5\n")
    result = run_cli(tmp_path, "--config", str(path), "check-config")
    assert result.returncode == 2
    assert result.stderr.startswith(f"hezo-collector: {path}: incidents.confirm_windw:")


def test_the_store_password_is_never_printed(tmp_path: Path) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text("store:\n  url: postgresql://hezo:s3cret-pass@127.0.0.1:5432/hezo\n")
    result = run_cli(tmp_path, "check-config", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert "s3cret-pass" not in result.stdout + result.stderr
    assert "postgresql://hezo:***@127.0.0.1:5432/hezo" in result.stdout


@pytest.mark.parametrize("command", [("migrate",), ("tickets", "list"), ("serve",), ("check-config",)])
def test_without_a_configuration_a_command_refuses_and_creates_no_database(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    result = run_cli(tmp_path, *command)
    assert result.returncode == 2
    assert f"{command[0]} needs the collector's configuration: give --config FILE" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_environment_names_the_configuration_file(tmp_path: Path) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text(f"store:\n  url: sqlite:///{tmp_path / 'store.db'}\n")
    result = run_cli(tmp_path, "migrate", env={"HEZO_COLLECTOR_CONFIG": str(path)})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "store.db").exists()


def test_json_log_lines_on_request(tmp_path: Path) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text(f"store:\n  url: sqlite:///{tmp_path / 'store.db'}\n")
    result = run_cli(
        tmp_path, "--config", str(path), "--log-level", "DEBUG", "--log-format", "json", "migrate"
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert lines, "DEBUG shows the migration's log lines"
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)


def test_the_config_files_log_format_applies_when_the_command_line_names_none(tmp_path: Path) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text(f"log_format: json\nstore:\n  url: sqlite:///{tmp_path / 'store.db'}\n")
    result = run_cli(tmp_path, "--config", str(path), "--log-level", "DEBUG", "migrate")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["level"] for line in result.stderr.splitlines()]
