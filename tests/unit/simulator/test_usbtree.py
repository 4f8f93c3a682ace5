"""The fake sysfs tree shows a MeetUp as Linux does: two Logitech USB devices with one serial."""

from pathlib import Path

from simulator.usbtree import MEETUP_SERIAL, UsbTree, meetup_devices


def read(path: Path) -> str:
    return path.read_text()


def plugged_meetup(tmp_path: Path) -> tuple[UsbTree, Path]:
    devices_dir = tmp_path / "sysfs" / "bus" / "usb" / "devices"
    tree = UsbTree(devices_dir)
    for device in meetup_devices():
        tree.plug(device)
    return tree, devices_dir


def ids(devices_dir: Path) -> set[str]:
    return {
        f"{read(d / 'idVendor').strip()}:{read(d / 'idProduct').strip()}"
        for d in devices_dir.iterdir()
        if ":" not in d.name
    }


def test_meetup_shows_camera_0866_and_speakerphone_0867_with_one_serial(tmp_path: Path) -> None:
    _, devices_dir = plugged_meetup(tmp_path)

    assert ids(devices_dir) == {"046d:0866", "046d:0867"}
    for device in devices_dir.iterdir():
        assert read(device / "serial") == MEETUP_SERIAL + "\n"
        assert read(device / "manufacturer") == "Logitech\n"
    assert read(devices_dir / "1-3" / "product") == "MeetUp Speakerphone\n"


def test_interfaces_carry_video_audio_and_hid_classes(tmp_path: Path) -> None:
    _, devices_dir = plugged_meetup(tmp_path)

    def classes(port: str) -> list[str]:
        interfaces = sorted((devices_dir / port).glob(f"{port}:1.*"))
        return [read(i / "bInterfaceClass").strip() for i in interfaces]

    assert classes("1-2") == ["0e", "0e", "03"]
    assert classes("1-3") == ["01", "01", "01", "03"]


def test_every_attribute_file_ends_with_a_newline(tmp_path: Path) -> None:
    _, devices_dir = plugged_meetup(tmp_path)

    files = [f for f in devices_dir.rglob("*") if f.is_file()]
    assert len(files) > 20
    assert all(read(f).endswith("\n") for f in files)


def test_unplug_leaves_no_trace_in_the_scanned_directory(tmp_path: Path) -> None:
    tree, devices_dir = plugged_meetup(tmp_path)
    _, speakerphone = meetup_devices()

    tree.unplug(speakerphone)

    assert [d.name for d in devices_dir.iterdir()] == ["1-2"]
    assert ids(devices_dir) == {"046d:0866"}


def test_a_replugged_device_is_whole_with_a_new_device_number(tmp_path: Path) -> None:
    tree, devices_dir = plugged_meetup(tmp_path)
    _, speakerphone = meetup_devices()
    before = read(devices_dir / "1-3" / "devnum")

    tree.unplug(speakerphone)
    tree.plug(speakerphone)

    assert ids(devices_dir) == {"046d:0866", "046d:0867"}
    assert len(list((devices_dir / "1-3").glob("1-3:1.*"))) == 4
    assert read(devices_dir / "1-3" / "devnum") != before
