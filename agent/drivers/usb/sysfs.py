"""The USB devices in a Linux sysfs tree (``/sys/bus/usb/devices``, or a tree of the simulator's or a test's).

The one sysfs reader: the driver counts a device's functions with it, the hot-plug scan compares two of its
readings, and the in-depth service test lists what it found.
"""

from dataclasses import dataclass
from pathlib import Path

DEFAULT_ROOT = Path("/sys/bus/usb/devices")


@dataclass(frozen=True)
class UsbDevice:
    path: str
    vendor: str
    product: str
    serial: str | None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def scan(root: Path) -> list[UsbDevice]:
    """Every USB device under ``root`` (interfaces such as ``1-2:1.0`` and hidden entries are skipped)."""
    found = []
    for entry in sorted(root.iterdir()):
        if ":" in entry.name or entry.name.startswith("."):
            continue
        vendor = _read(entry / "idVendor")
        product = _read(entry / "idProduct")
        if vendor is None or product is None:
            continue  # a device that vanished mid-scan, or not a device
        found.append(UsbDevice(entry.name, vendor.lower(), product.lower(), _read(entry / "serial")))
    return found
