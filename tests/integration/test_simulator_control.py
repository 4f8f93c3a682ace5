"""The control endpoint powers and breaks devices, and says why it refuses a request."""

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.simulator import control, running_site

pytestmark = pytest.mark.integration


def test_devices_lists_power_state_and_faults(tmp_path: Path) -> None:
    with running_site(tmp_path) as site:
        site.fault("meetup", "audio-lost")

        status, devices = control(site.control_url, "GET", "/devices")

    assert status == 200
    assert [(d["id"], d["powered"], d["faults"]) for d in devices] == [
        ("rally-bar", True, []),
        ("meetup", True, ["audio-lost"]),
        ("rally", True, []),
        ("sync-api", True, []),
    ]


def test_power_off_through_the_endpoint_updates_site_json(tmp_path: Path) -> None:
    with running_site(tmp_path) as site:
        status, device = control(site.control_url, "POST", "/devices/meetup/power", b'{"on": false}')
        written = json.loads(site.site_file.read_text())

    assert status == 200
    assert device["powered"] is False
    assert written["devices"][1]["powered"] is False


def test_fault_through_the_endpoint_removes_the_speakerphone(tmp_path: Path) -> None:
    with running_site(tmp_path) as site:
        status, device = control(site.control_url, "POST", "/devices/meetup/fault", b'{"name": "audio-lost"}')
        remaining = sorted(p.name for p in site.sysfs_root.iterdir())

    assert status == 200
    assert device["usb"] == ["046d:0866"]
    assert remaining == ["1-2"]


def test_unknown_device_is_404_naming_the_known_ones(tmp_path: Path) -> None:
    with running_site(tmp_path) as site:
        status, answer = control(site.control_url, "POST", "/devices/tap/power", b'{"on": false}')

    assert status == 404
    assert answer["error"] == "unknown device 'tap': the site has rally-bar, meetup, rally, sync-api"


def test_bad_json_is_400_saying_so(tmp_path: Path) -> None:
    with running_site(tmp_path) as site:
        status, answer = control(site.control_url, "POST", "/devices/meetup/power", b"{on: false")

    assert status == 400
    assert answer["error"].startswith("the body is not valid JSON")


def test_power_without_a_boolean_is_400_showing_the_expected_body(tmp_path: Path) -> None:
    with running_site(tmp_path) as site:
        status, answer = control(site.control_url, "POST", "/devices/meetup/power", b'{"on": "no"}')

    assert status == 400
    assert '{"on": false}' in answer["error"]


def test_unknown_fault_is_400_listing_the_known_ones(tmp_path: Path) -> None:
    with running_site(tmp_path) as site:
        status, answer = control(
            site.control_url, "POST", "/devices/rally-bar/fault", b'{"name": "audio-lost"}'
        )

    assert status == 400
    known = "slow, cert-expiring, cert-expired, restore"
    assert answer["error"] == f"unknown fault 'audio-lost' for rally-bar: known faults are {known}"


def test_wrong_method_is_405_and_the_endpoint_keeps_serving(tmp_path: Path) -> None:
    with running_site(tmp_path) as site:
        refused, answer = control(site.control_url, "GET", "/devices/meetup/power")
        after, _ = control(site.control_url, "GET", "/devices")

    assert refused == 405
    assert "use POST" in answer["error"]
    assert after == 200


def test_a_form_post_as_a_browser_page_could_send_is_refused(tmp_path: Path) -> None:
    with running_site(tmp_path) as site:
        request = urllib.request.Request(
            site.control_url + "/devices/rally-bar/power",
            data=b'{"on": false}',
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=30)
        answer = json.loads(caught.value.read())
        caught.value.close()
        powered = site.device("rally-bar")["powered"]

    assert caught.value.code == 415
    assert answer == {"error": "send the body as Content-Type: application/json"}
    assert powered is True
