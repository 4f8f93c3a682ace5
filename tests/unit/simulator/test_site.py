"""The site powers and breaks its devices and tells about them in site.json."""

import json
from pathlib import Path

import pytest

from simulator.errors import SimulatorError, UnknownDeviceError, UnknownFaultError
from simulator.site import SimulatedSite
from tests.support.simulator import running_site
from tests.support.waiting import eventually


def usb_ids(site: SimulatedSite) -> set[str]:
    return {
        f"{(d / 'idVendor').read_text().strip()}:{(d / 'idProduct').read_text().strip()}"
        for d in site.sysfs_root.iterdir()
    }


def test_site_json_describes_both_devices_and_where_to_reach_them(tmp_path: Path) -> None:
    with running_site(tmp_path / "state") as site:
        written = json.loads(site.site_file.read_text())

    assert written["control_url"] == site.control_url
    assert written["sysfs_root"] == str((tmp_path / "state" / "sysfs" / "bus" / "usb" / "devices").resolve())
    rally_bar, meetup, *_sync_seen = written["devices"]
    assert (rally_bar["id"], rally_bar["model"], rally_bar["serial"]) == (
        "rally-bar",
        "rally-bar",
        "2034FH1002R2",
    )
    assert rally_bar["https_url"].startswith("https://127.0.0.1:")
    assert Path(rally_bar["cert_file"]).is_file()
    assert (meetup["id"], meetup["model"], meetup["name"]) == ("meetup", "meetup", "MeetUp")
    assert rally_bar["powered"]
    assert meetup["powered"]


def test_meetup_power_off_removes_both_usb_devices_and_power_on_brings_them_back(tmp_path: Path) -> None:
    with running_site(tmp_path) as site:
        site.power("meetup", on=False)
        off = usb_ids(site)
        powered_in_file = json.loads(site.site_file.read_text())["devices"][1]["powered"]
        site.power("meetup", on=True)
        on = usb_ids(site)

    assert off == set()
    assert powered_in_file is False
    assert on == {"046d:0866", "046d:0867"}


def test_audio_lost_removes_only_the_speakerphone_until_restored(tmp_path: Path) -> None:
    with running_site(tmp_path) as site:
        site.fault("meetup", "audio-lost")
        lost = usb_ids(site)
        site.fault("meetup", "restore")
        restored = usb_ids(site)

    assert lost == {"046d:0866"}
    assert restored == {"046d:0866", "046d:0867"}


def test_audio_lost_survives_a_power_cycle(tmp_path: Path) -> None:
    with running_site(tmp_path) as site:
        site.fault("meetup", "audio-lost")
        site.power("meetup", on=False)
        site.power("meetup", on=True)

        assert usb_ids(site) == {"046d:0866"}
        assert site.device("meetup")["faults"] == ["audio-lost"]


def test_unknown_fault_names_the_known_ones(tmp_path: Path) -> None:
    with (
        running_site(tmp_path) as site,
        pytest.raises(UnknownFaultError, match="audio-lost, reenumerate, restore"),
    ):
        site.fault("meetup", "on-fire")


def test_unknown_device_is_refused(tmp_path: Path) -> None:
    with (
        running_site(tmp_path) as site,
        pytest.raises(UnknownDeviceError, match="rally-bar, meetup, rally, sync-api"),
    ):
        site.power("tap", on=False)


def test_stop_removes_site_json_and_the_usb_devices(tmp_path: Path) -> None:
    with running_site(tmp_path) as site:
        pass

    assert not site.site_file.exists()
    assert list(site.sysfs_root.iterdir()) == []


def test_a_non_loopback_host_is_refused_before_anything_listens(tmp_path: Path) -> None:
    with pytest.raises(SimulatorError, match="loopback"):
        SimulatedSite(tmp_path, host="0.0.0.0")


def test_reenumerate_makes_the_meetup_vanish_then_come_back_by_itself(tmp_path: Path) -> None:
    with running_site(tmp_path) as site:
        described = site.fault("meetup", "reenumerate", seconds=0.2)
        assert described["usb"] == []
        assert described["faults"] == ["reenumerate"]
        both = ["046d:0866", "046d:0867"]
        eventually("the MeetUp back", lambda: site.device("meetup")["usb"] == both, timeout=20)
        assert site.device("meetup")["faults"] == []
