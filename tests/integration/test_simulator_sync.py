"""The simulated site's Sync side: power and faults change what the fake Sync Cloud API reports."""

from pathlib import Path
from typing import Any

import pytest
import requests

from simulator.cli import main
from simulator.errors import UnknownFaultError
from simulator.site import RALLY_BAR_SERIAL, RALLY_SERIAL, SimulatedSite
from tests.support.simulator import running_site

pytestmark = pytest.mark.integration


def sync_devices(site: SimulatedSite) -> dict[str, dict[str, Any]]:
    """Every device the fake API reports, by serial, fetched over mutual TLS as the agent would."""
    account = site.status()["sync_api"]
    answer = requests.get(
        f"{account['base_url']}/org/{account['org_id']}/place",
        params={"projection": "place.device,place.device.info,place.device.status"},
        cert=(account["cert_file"], account["key_file"]),
        verify=account["ca_file"],
        timeout=10,
    )
    answer.raise_for_status()
    return {d["serial"]: d for p in answer.json()["places"] for d in p.get("devices", []) if "serial" in d}


def test_powering_the_rally_off_makes_sync_report_it_offline(tmp_path: Path) -> None:
    with running_site(tmp_path) as site:
        before = sync_devices(site)[RALLY_SERIAL]["status"]
        site.power("rally", on=False)
        after = sync_devices(site)[RALLY_SERIAL]
    assert before == "Online"
    assert (after["status"], after["healthStatus"]) == ("Offline", "Error")


def test_powering_the_rally_bar_off_also_shows_in_sync(tmp_path: Path) -> None:
    with running_site(tmp_path) as site:
        site.power("rally-bar", on=False)
        assert sync_devices(site)[RALLY_BAR_SERIAL]["status"] == "Offline"
        site.power("rally-bar", on=True)
        assert sync_devices(site)[RALLY_BAR_SERIAL]["status"] == "InUse"


def test_faults_add_up_in_sync_until_restore(tmp_path: Path) -> None:
    with running_site(tmp_path) as site:
        site.fault("rally", "mic-pod-lost")
        described = site.fault("rally", "firmware-changed")
        broken = sync_devices(site)[RALLY_SERIAL]
        site.fault("rally", "restore")
        restored = sync_devices(site)[RALLY_SERIAL]
    assert described["faults"] == ["firmware-changed", "mic-pod-lost"]
    assert broken["peripherals"]["micPod"]["count"] == {"expected": 2, "actual": 1}
    assert (broken["version"], broken["healthStatus"]) == ("1.3.12", "Warning")
    assert restored["peripherals"]["micPod"]["count"] == {"expected": 2, "actual": 2}
    assert (restored["version"], restored["healthStatus"]) == ("1.2.69", "NoIssues")


def test_an_unknown_sync_fault_lists_the_known_ones(tmp_path: Path) -> None:
    with running_site(tmp_path) as site, pytest.raises(UnknownFaultError) as error:
        site.fault("rally", "audio-lost")
    assert str(error.value) == (
        "unknown fault 'audio-lost' for rally: known faults are offline, mic-pod-lost, health-warning, "
        "firmware-changed, restore"
    )


def test_the_sync_api_powered_off_refuses_connections(tmp_path: Path) -> None:
    with running_site(tmp_path) as site:
        site.power("sync-api", on=False)
        with pytest.raises(requests.ConnectionError):
            sync_devices(site)
        site.power("sync-api", on=True)
        assert RALLY_SERIAL in sync_devices(site)


def test_hezo_sim_fault_reaches_the_rally(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_site(tmp_path / "state") as site:
        code = main(["fault", "rally", "mic-pod-lost", "--control", site.control_url])
        unstable = main(["fault", "sync-api", "unstable", "--seconds", "1", "--control", site.control_url])
    assert (code, unstable) == (0, 0)
    assert capsys.readouterr().out == "rally: faults mic-pod-lost\nsync-api: faults unstable:1\n"
