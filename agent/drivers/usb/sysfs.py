"""The USB devices in a Linux sysfs tree (``/sys/bus/usb/devices``, or a tree of the simulator's or a test's).

The one sysfs reader: the driver counts a device's functions with it, the hot-plug scan compares two of its
readings, and the in-depth service test lists what it found. ``SharedScan`` is how the agent's probes read a
tree: one scan at a time per root, whose reading goes to every probe that asked for one while it ran (the
devices checked in one round of polls, and the hot-plug scan, read the tree once, not once each).
"""

import asyncio
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


class SharedScan:
    """Scans of ``root`` in a worker thread, one at a time: who asks while one runs gets that one's reading.

    A scan's ``OSError`` (a root that cannot be read) goes to every caller of it. Belongs to one event loop.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._running: asyncio.Future[list[UsbDevice]] | None = None

    async def read(self) -> list[UsbDevice]:
        """The USB devices under ``root``, from the scan running now or from a new one."""
        if self._running is None:
            running = asyncio.ensure_future(asyncio.to_thread(scan, self.root))
            running.add_done_callback(self._done)
            self._running = running
        return await asyncio.shield(self._running)  # one caller cancelled leaves the scan to the others

    def _done(self, running: "asyncio.Future[list[UsbDevice]]") -> None:
        if self._running is running:
            self._running = None
        if not running.cancelled():
            running.exception()  # every caller gets it; none left waiting must not make it "never retrieved"

    def close(self) -> None:
        """Nothing to release: a scan running now finishes in its thread."""
