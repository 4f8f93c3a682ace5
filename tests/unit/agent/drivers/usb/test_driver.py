"""The usb driver reads a sysfs tree laid out like the real one, with the real MeetUp ids."""

import asyncio
from pathlib import Path

from agent.catalog import model
from agent.drivers.usb import UsbOptions, build
from agent.drivers.usb.sysfs import scan


def add_device(
    root: Path, name: str, product: str, serial: str = "2041MU0017A8", vendor: str = "046d"
) -> Path:
    """One USB device as the kernel shows it: id files, serial, and an interface directory."""
    device = root / name
    device.mkdir(parents=True)
    for file, value in {
        "idVendor": vendor,
        "idProduct": product,
        "serial": serial,
        "manufacturer": "Logitech",
    }.items():
        (device / file).write_text(value + "\n")
    interface = root / f"{name}:1.0"
    interface.mkdir()
    (interface / "bInterfaceClass").write_text("0e\n")
    return device


def meetup_probe(root: Path, serial: str | None = None):  # type: ignore[no-untyped-def]
    meetup = model("meetup")
    return build(UsbOptions(driver="usb", sysfs_root=root, serial=serial), meetup.usb, meetup.name)


def test_scan_skips_interfaces_and_reads_ids(tmp_path: Path) -> None:
    add_device(tmp_path, "1-2", "0866")
    found = scan(tmp_path)
    assert [(d.path, d.vendor, d.product, d.serial) for d in found] == [
        ("1-2", "046d", "0866", "2041MU0017A8")
    ]


def test_camera_and_speakerphone_present_is_up(tmp_path: Path) -> None:
    add_device(tmp_path, "1-2", "0866")
    add_device(tmp_path, "1-3", "0867")
    result = asyncio.run(meetup_probe(tmp_path).poll())
    assert result.ok
    assert not result.degraded
    assert result.detail == "present: video 046d:0866, audio 046d:0867"


def test_camera_without_audio_is_degraded_not_up(tmp_path: Path) -> None:
    add_device(tmp_path, "1-2", "0866")
    result = asyncio.run(meetup_probe(tmp_path).poll())
    assert result.ok
    assert result.degraded
    assert result.detail == "MeetUp incomplete: missing audio 046d:0867"


def test_nothing_on_the_bus_is_a_failed_check_with_the_missing_ids(tmp_path: Path) -> None:
    add_device(tmp_path, "1-4", "c52b")  # some other Logitech device
    result = asyncio.run(meetup_probe(tmp_path).poll())
    assert not result.ok
    assert result.detail == "MeetUp not on the USB bus (missing video 046d:0866, audio 046d:0867)"


def test_a_configured_serial_ignores_other_units(tmp_path: Path) -> None:
    add_device(tmp_path, "1-2", "0866", serial="OTHER")
    add_device(tmp_path, "1-3", "0867", serial="OTHER")
    result = asyncio.run(meetup_probe(tmp_path, serial="2041MU0017A8").poll())
    assert not result.ok


def test_an_unreadable_root_is_reported_as_data(tmp_path: Path) -> None:
    result = asyncio.run(meetup_probe(tmp_path / "missing").poll())
    assert not result.ok
    assert result.detail.startswith(f"cannot read {tmp_path / 'missing'}:")


def test_functions_from_config_override_the_catalog(tmp_path: Path) -> None:
    add_device(tmp_path, "1-5", "0999")
    options = UsbOptions.model_validate(
        {"driver": "usb", "sysfs_root": str(tmp_path), "functions": [{"id": "046D:0999", "role": "camera"}]}
    )
    result = asyncio.run(build(options, model("rally-camera").usb, "Rally Camera").poll())
    assert result.ok
    assert result.detail == "present: camera 046d:0999"
