"""The shipped unit files: hardened to an exposure of 1.5 or less by ``systemd-analyze security``, with the
collector's watchdog, and the SNMP trap drop-in granting no more than it says."""

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "systemd"
MAX_EXPOSURE = 1.5


def exposure(unit: Path, tmp_path: Path, *drop_ins: Path) -> float:
    """``systemd-analyze security --offline`` of ``unit`` and ``drop_ins``, copied alone to ``tmp_path``."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail(
            "systemd-analyze is not installed (Debian package systemd: scripts/system-deps.sh --promtool)",
            pytrace=False,
        )
    shutil.copy(unit, tmp_path / unit.name)
    if drop_ins:
        folder = tmp_path / f"{unit.name}.d"
        folder.mkdir()
        for drop_in in drop_ins:
            shutil.copy(drop_in, folder / drop_in.name)
    result = subprocess.run(
        [analyze, "security", "--offline=yes", "--no-pager", str(tmp_path / unit.name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d)", result.stdout)
    assert found is not None, result.stdout + result.stderr
    return float(found.group(1))


def directives(unit: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, empty_lines_in_values=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(unit)
    return parser


@pytest.mark.parametrize("name", ["hezo-agent.service", "hezo-collector.service"])
def test_a_unit_is_exposed_no_more_than_1_5(name: str, tmp_path: Path) -> None:
    assert exposure(UNITS / name, tmp_path) <= MAX_EXPOSURE


def test_the_trap_drop_in_adds_only_the_port_below_1024(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "traps").mkdir()
    drop_in = UNITS / "hezo-agent.service.d" / "snmp-traps.conf"
    base = exposure(UNITS / "hezo-agent.service", tmp_path / "base")
    with_traps = exposure(UNITS / "hezo-agent.service", tmp_path / "traps", drop_in)
    assert base < with_traps <= 2.0
    assert dict(directives(drop_in)["Service"]) == {
        "PrivateUsers": "no",
        "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
        "AmbientCapabilities": "CAP_NET_BIND_SERVICE",
    }


def test_the_collector_says_ready_and_has_a_watchdog() -> None:
    service = directives(UNITS / "hezo-collector.service")["Service"]
    assert (service["Type"], service["NotifyAccess"], service["WatchdogSec"]) == ("notify", "main", "60")
    assert service["ExecStartPre"].endswith("check-config")


@pytest.mark.parametrize("name", ["hezo-agent.service", "hezo-collector.service"])
def test_a_unit_runs_its_program_from_the_documented_venv_with_its_config(name: str) -> None:
    service = directives(UNITS / name)["Service"]
    program = name.removesuffix(".service")
    assert service["ExecStart"].startswith(f"/opt/hezo/venv/bin/{program} --config /etc/hezo/")
