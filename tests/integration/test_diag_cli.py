"""`hezo-diag check` runs the agent's checks on site, without a broker, and says what it found."""

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from simulator.agentconfig import agent_config_for
from simulator.site import SimulatedSite

pytestmark = pytest.mark.integration


@pytest.fixture
def site(tmp_path: Path) -> Iterator[SimulatedSite]:
    running = SimulatedSite(tmp_path / "site")
    running.start()
    try:
        yield running
    finally:
        running.stop()


def diag(
    site: SimulatedSite, tmp_path: Path, *args: str, command: str = "check"
) -> subprocess.CompletedProcess[str]:
    # No broker listens on port 9: the service test must not need one.
    config = agent_config_for(site.status(), broker_host="127.0.0.1", broker_port=9, recheck_delay=0.1)
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.run(
        [sys.executable, "-m", "agent.diag", command, "--config", str(path), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_every_device_up_exits_0_and_prints_each_check(site: SimulatedSite, tmp_path: Path) -> None:
    run = diag(site, tmp_path)
    assert run.returncode == 0, run.stderr
    assert "rally-bar (rally-bar, serial 2034FH1002R2): UP" in run.stdout
    assert "ok https https://127.0.0.1:" in run.stdout
    assert "meetup (meetup, serial 2041MU0017A8): UP" in run.stdout


def test_a_lost_speakerphone_is_degraded_and_exits_1(site: SimulatedSite, tmp_path: Path) -> None:
    site.fault("meetup", "audio-lost")
    run = diag(site, tmp_path, "--device", "meetup", "--json")
    assert run.returncode == 1
    [report] = json.loads(run.stdout)
    assert report["state"] == "degraded"
    assert report["reason"].endswith("MeetUp incomplete: missing audio 046d:0867")


def test_a_powered_off_rally_bar_is_down_with_the_reason(site: SimulatedSite, tmp_path: Path) -> None:
    site.power("rally-bar", on=False)
    run = diag(site, tmp_path, "--device", "rally-bar")
    assert run.returncode == 1
    assert "rally-bar (rally-bar, serial 2034FH1002R2): DOWN" in run.stdout
    assert ": connection refused" in run.stdout


def test_an_unknown_device_is_refused_with_the_configured_ones(site: SimulatedSite, tmp_path: Path) -> None:
    run = diag(site, tmp_path, "--device", "tap")
    assert run.returncode == 2
    assert run.stderr.strip() == "hezo-diag: unknown device(s): tap; configured: meetup, rally, rally-bar"


def test_a_mic_pod_lost_in_sync_is_degraded_with_the_count(site: SimulatedSite, tmp_path: Path) -> None:
    site.fault("rally", "mic-pod-lost")
    run = diag(site, tmp_path, "--device", "rally")
    assert run.returncode == 1, run.stderr
    assert "rally (rally, serial 2210FDZ2AB78): DEGRADED" in run.stdout
    assert "1 of 2 mic pods" in run.stdout


def test_logs_builds_a_redacted_bundle_on_site_without_a_broker(site: SimulatedSite, tmp_path: Path) -> None:
    from diagnostics.bundle import inspect_bundle

    folder = tmp_path / "sync"
    folder.mkdir()
    (folder / "app.log").write_text("user=room password=plain-text-pw\nstarted\n")
    out = tmp_path / "bundle.tar.gz"
    done = diag(site, tmp_path, "--folder", str(folder), "--output", str(out), command="logs")
    assert done.returncode == 0, done.stderr
    manifest = inspect_bundle(out)
    paths = {f["path"] for f in manifest["files"]}
    assert "app/0-sync/app.log" in paths
    assert "device/rally-bar/https-0.txt" in paths
    assert b"plain-text-pw" not in subprocess.run(["zcat", str(out)], capture_output=True, check=True).stdout


def test_in_depth_service_tests_cover_a_device_seen_only_through_sync(
    site: SimulatedSite, tmp_path: Path
) -> None:
    import asyncio

    from agent.config import AgentConfig
    from agent.diag.deep import device_service_tests

    site.fault("rally", "mic-pod-lost")
    config = AgentConfig.model_validate(
        agent_config_for(site.status(), broker_host="127.0.0.1", broker_port=9, recheck_delay=0.1)
    )
    report = asyncio.run(device_service_tests(config, "rally", repeat=2))
    assert [check["driver"] for check in report["checks"]] == ["sync"]
    assert "1 of 2 mic pods" in json.dumps(report)
