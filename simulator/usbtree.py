"""A MeetUp on USB, as a fake Linux sysfs tree under ``<sysfs>/bus/usb/devices/``.

One directory per USB device (``1-2``, ``1-3``) with the attribute files a scanner reads, and one
subdirectory per interface (``1-2:1.0``). Real sysfs has these as symlinks into ``/sys/devices`` and
lists the interfaces at the top level too; a scanner that reads ``idVendor`` of each entry sees the same.

Devices appear and vanish atomically: a device is written in a staging directory beside ``devices/``
and renamed into place, and is renamed out of ``devices/`` before it is deleted, so a scanner never
reads a half-written or half-deleted device.
"""

import logging
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

VENDOR_LOGITECH = "046d"
# The MeetUp's serial number is this simulator's choice; the real format is not published.
MEETUP_SERIAL = "2041MU0017A8"


@dataclass(frozen=True)
class UsbInterface:
    """One interface: USB class, subclass and protocol as two hex digits each."""

    number: int
    interface_class: str
    subclass: str
    protocol: str = "00"


@dataclass(frozen=True)
class UsbDevice:
    """One USB device as sysfs shows it; ``port`` is its directory name, e.g. ``1-2``."""

    port: str
    product_id: str
    product: str
    serial: str
    device_class: str
    interfaces: tuple[UsbInterface, ...]
    bcd_device: str = "0100"
    speed: str = "480"
    manufacturer: str = "Logitech"
    vendor_id: str = VENDOR_LOGITECH

    @property
    def busnum(self) -> int:
        return int(self.port.split("-", 1)[0])

    def attributes(self, devnum: int) -> dict[str, str]:
        return {
            "idVendor": self.vendor_id,
            "idProduct": self.product_id,
            "serial": self.serial,
            "product": self.product,
            "manufacturer": self.manufacturer,
            "bcdDevice": self.bcd_device,
            "busnum": str(self.busnum),
            "devnum": str(devnum),
            "speed": self.speed,
            "bDeviceClass": self.device_class,
            "bNumInterfaces": f"{len(self.interfaces):2d}",  # sysfs pads it to two columns
        }


VIDEO, AUDIO, HID = "0e", "01", "03"


def meetup_devices(serial: str = MEETUP_SERIAL, bus: int = 1) -> tuple[UsbDevice, UsbDevice]:
    """The MeetUp's two USB devices: the ``0866`` camera and the ``0867`` speakerphone.

    Ids and functions are from ChromiumOS ``cfm_usb_devices.py``; product strings other than
    "MeetUp Speakerphone", ``bcdDevice``, speed and ports are the simulator's own choice.
    """
    camera = UsbDevice(
        port=f"{bus}-2",
        product_id="0866",
        product="Logitech MeetUp",
        serial=serial,
        device_class="ef",  # miscellaneous, as UVC devices with interface association declare
        interfaces=(
            UsbInterface(0, VIDEO, "01"),  # video control
            UsbInterface(1, VIDEO, "02"),  # video streaming
            UsbInterface(2, HID, "00"),
        ),
    )
    speakerphone = UsbDevice(
        port=f"{bus}-3",
        product_id="0867",
        product="MeetUp Speakerphone",
        serial=serial,
        device_class="00",  # defined per interface
        interfaces=(
            UsbInterface(0, AUDIO, "01"),  # audio control
            UsbInterface(1, AUDIO, "02"),  # streaming, speaker
            UsbInterface(2, AUDIO, "02"),  # streaming, microphone
            UsbInterface(3, HID, "00"),
        ),
    )
    return camera, speakerphone


class UsbTree:
    """The devices directory of a fake sysfs; adds and removes whole devices atomically."""

    def __init__(self, devices_dir: Path) -> None:
        self.devices_dir = devices_dir
        # Beside devices/, on the same file system, so renames are atomic and scanners never list it.
        self._work_dir = devices_dir.parent / ".hezo-sim-work"
        self._next_devnum = 2  # 1 is the root hub
        self._lock = threading.Lock()

    def present(self, device: UsbDevice) -> bool:
        return (self.devices_dir / device.port).is_dir()

    def plug(self, device: UsbDevice) -> None:
        """Make ``device`` appear, whole; a no-op when it is there already."""
        with self._lock:
            target = self.devices_dir / device.port
            if target.exists():
                return
            self.devices_dir.mkdir(parents=True, exist_ok=True)
            self._work_dir.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f"{device.port}.", dir=self._work_dir))
            # Like the kernel, a device that comes back gets a new device number.
            _write_device(staging, device, self._next_devnum)
            self._next_devnum = self._next_devnum + 1 if self._next_devnum < 127 else 2
            staging.rename(target)
            log.info("usb %s:%s plugged at %s", device.vendor_id, device.product_id, device.port)

    def unplug(self, device: UsbDevice) -> None:
        """Make ``device`` vanish at once; a no-op when it is gone already."""
        with self._lock:
            source = self.devices_dir / device.port
            if not source.exists():
                return
            self._work_dir.mkdir(parents=True, exist_ok=True)
            graveyard = Path(tempfile.mkdtemp(prefix=f"{device.port}.gone.", dir=self._work_dir))
            source.rename(graveyard / device.port)
            shutil.rmtree(graveyard)
            log.info("usb %s:%s unplugged from %s", device.vendor_id, device.product_id, device.port)

    def clear(self) -> None:
        """Remove the work directory left by an earlier run that did not stop cleanly."""
        with self._lock:
            shutil.rmtree(self._work_dir, ignore_errors=True)


def _write_device(directory: Path, device: UsbDevice, devnum: int) -> None:
    for name, value in device.attributes(devnum).items():
        (directory / name).write_text(value + "\n")  # every sysfs attribute ends with a newline
    for interface in device.interfaces:
        sub = directory / f"{device.port}:1.{interface.number}"
        sub.mkdir()
        attributes = {
            "bInterfaceClass": interface.interface_class,
            "bInterfaceSubClass": interface.subclass,
            "bInterfaceProtocol": interface.protocol,
            "bInterfaceNumber": f"{interface.number:02x}",
            "bAlternateSetting": f"{0:2d}",  # sysfs pads it to two columns
        }
        for name, value in attributes.items():
            (sub / name).write_text(value + "\n")
