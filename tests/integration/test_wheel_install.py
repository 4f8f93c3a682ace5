"""The built wheel, installed as an operator would into a fresh venv without the dev extras: ``pip install
hezo`` is a working agent (and a collector command that names its extra), ``hezo[collector]`` a working
collector, with the sample configurations and the unit files under ``share/hezo``."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.mosquitto import ROOT

pytestmark = pytest.mark.integration

#: What the wheel is built from: copied, so the build never writes into the working tree.
SOURCES = (
    "agent",
    "collector",
    "common",
    "diagnostics",
    "protocol",
    "simulator",
    "config",
    "systemd",
    "docs",
)
INSTALL_TIMEOUT = 600


def run(*argv: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(arg) for arg in argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args}: {result.stdout}{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    ok(run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", out, source))
    [built] = out.glob("hezo-*.whl")
    return built


def fresh_venv(path: Path, requirement: str) -> Path:
    ok(run(sys.executable, "-m", "venv", path))
    ok(run(path / "bin" / "pip", "install", "--quiet", requirement))
    return path


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """A fresh venv with the base wheel only: ``pip install hezo``."""
    return fresh_venv(tmp_path_factory.mktemp("venv"), str(wheel))


def test_the_base_wheel_runs_the_agent(venv: Path, tmp_path: Path) -> None:
    assert "Poll a room's devices" in ok(run(venv / "bin" / "hezo-agent", "--help"))
    sample = venv / "share" / "hezo" / "config" / "agent.example.yaml"
    config = tmp_path / "agent.yaml"
    # The sample as an operator starts from it: its state directory made writable here.
    config.write_text(sample.read_text().replace("/var/lib/hezo-agent", str(tmp_path / "state")))
    assert ": OK: " in ok(run(venv / "bin" / "hezo-agent", "--config", config, "--check-config"))


def test_the_base_wheels_collector_command_names_the_extra(venv: Path) -> None:
    result = run(venv / "bin" / "hezo-collector", "--help")
    assert result.returncode == 2
    assert "pip install 'hezo[collector]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_wheel_ships_sample_configs_units_and_monitoring(venv: Path) -> None:
    share = venv / "share" / "hezo"
    for name in (
        "config/agent.example.yaml",
        "config/collector.example.yaml",
        "config/drivers/https.example.yaml",
        "config/prometheus/hezo.rules.yml",
        "config/grafana/hezo-dashboard.json",
        "systemd/hezo-agent.service",
        "systemd/hezo-collector.service",
        "docs/install.md",
    ):
        assert (share / name).is_file(), f"{name} is not in the wheel"


def test_the_collector_extra_checks_a_config_and_migrates_a_store(
    venv: Path, wheel: Path, tmp_path: Path
) -> None:
    ok(run(venv / "bin" / "pip", "install", "--quiet", f"{wheel}[collector]"))
    collector = venv / "bin" / "hezo-collector"
    sample = venv / "share" / "hezo" / "config" / "collector.example.yaml"
    assert f"{sample}: OK" in ok(run(collector, "check-config", "--config", sample))
    config = tmp_path / "collector.yaml"
    config.write_text(f"store:\n  url: sqlite:///{tmp_path / 'store.db'}\n")
    assert "is up to date" in ok(run(collector, "--config", config, "migrate", cwd=tmp_path))
    assert (tmp_path / "store.db").is_file()
