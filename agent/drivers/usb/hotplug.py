"""USB hot-plug: learn at once that a USB device came or went, so its check runs now, not at its interval.

Two sources of the same ``UsbEvent``s:

- ``UdevSource``: the kernel's uevents over netlink (pyudev, imported only when used). Needs the real
  ``/sys`` and a kernel that delivers uevents to this network namespace (containers often do not).
- ``ScanSource``: a scan of a sysfs devices directory every ``interval`` seconds, compared with the last one.
  Works on any tree (the simulator's, a test's) and wherever netlink is not available.

A probe runs ``watch(source, wanted, notify)``: it calls ``notify()`` for every event that concerns one of the
``wanted`` vendor:product ids. The poller turns ``notify`` into an immediate re-check of the device.
"""

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

from agent.drivers.usb.sysfs import DEFAULT_ROOT, scan
from agent.errors import AgentError

log = logging.getLogger(__name__)

#: The tree udev events describe: the real one.
REAL_SYSFS_DEVICES = DEFAULT_ROOT


@dataclass(frozen=True)
class UsbEvent:
    """A USB device appeared (``add``) or vanished (``remove``); ``usb_id`` is vendor:product when known."""

    action: str
    usb_id: str | None
    path: str


class EventSource(Protocol):
    """Where hot-plug events come from; the seam tests replace."""

    def events(self) -> AsyncIterator[UsbEvent]: ...


class HotplugUnavailableError(AgentError):
    """The asked-for event source cannot be used here; the message says why."""


def _ids(root: Path) -> dict[str, str]:
    """path -> vendor:product of every USB device directory under ``root`` (interfaces skipped)."""
    return {d.path: f"{d.vendor}:{d.product}" for d in scan(root)}


class ScanSource:
    """Compares a scan of ``root`` every ``interval`` seconds with the previous one."""

    def __init__(
        self, root: Path, interval: float, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> None:
        self.root = root
        self.interval = interval
        self._sleep = sleep

    async def events(self) -> AsyncIterator[UsbEvent]:
        before = await self._scan()
        while True:
            await self._sleep(self.interval)
            now = await self._scan()
            for path in sorted(before.keys() - now.keys()):
                yield UsbEvent("remove", before[path], path)
            for path in sorted(now.keys() - before.keys()):
                yield UsbEvent("add", now[path], path)
            for path in sorted(now.keys() & before.keys()):
                if now[path] != before[path]:  # another device on the same port between two scans
                    yield UsbEvent("remove", before[path], path)
                    yield UsbEvent("add", now[path], path)
            before = now

    async def _scan(self) -> dict[str, str]:
        try:
            return await asyncio.to_thread(_ids, self.root)
        except OSError:
            return {}  # a root that is gone is no devices; the check itself reports why


def usb_id_from_uevent(properties: Any) -> str | None:
    """vendor:product from a usb_device uevent's ``PRODUCT`` (``46d/867/100``: hex without leading zeros)."""
    product = properties.get("PRODUCT") if properties is not None else None
    if not product:
        return None
    parts = str(product).split("/")
    if len(parts) < 2:
        return None
    try:
        return f"{int(parts[0], 16):04x}:{int(parts[1], 16):04x}"
    except ValueError:
        return None


class UdevMonitor(Protocol):
    """What ``UdevSource`` uses of a ``pyudev.Monitor``: a descriptor to wait on and ``poll(timeout=0)``."""

    def start(self) -> None: ...
    def fileno(self) -> int: ...
    def poll(self, timeout: float) -> Any: ...


def udev_monitor() -> UdevMonitor:
    """pyudev's netlink monitor of USB devices; ``HotplugUnavailableError`` saying why it cannot be had."""
    try:
        import pyudev  # type: ignore[import-untyped]
    except ImportError:
        raise HotplugUnavailableError("pyudev is not installed (pip install 'hezo[udev]')") from None
    try:
        monitor = pyudev.Monitor.from_netlink(pyudev.Context())
        monitor.filter_by(subsystem="usb", device_type="usb_device")
    except (OSError, ImportError, pyudev.DeviceNotFoundError) as exc:
        raise HotplugUnavailableError(f"cannot open the udev netlink socket: {exc}") from None
    return cast(UdevMonitor, monitor)


class UdevSource:
    """Kernel uevents for USB devices, read on the event loop (no thread) from ``monitor``.

    ``monitor`` defaults to pyudev's netlink monitor (``udev_monitor()``); tests give one they can feed.
    """

    def __init__(self, monitor: UdevMonitor | None = None) -> None:
        self._monitor = monitor if monitor is not None else udev_monitor()

    async def events(self) -> AsyncIterator[UsbEvent]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[UsbEvent] = asyncio.Queue()
        self._monitor.start()
        fd = self._monitor.fileno()

        def readable() -> None:
            while (device := self._monitor.poll(timeout=0)) is not None:
                action = device.action or "change"
                queue.put_nowait(UsbEvent(action, usb_id_from_uevent(device.properties), device.sys_name))

        loop.add_reader(fd, readable)
        try:
            while True:
                yield await queue.get()
        finally:
            loop.remove_reader(fd)


def open_source(mode: str, root: Path, interval: float) -> EventSource | None:
    """The event source for ``mode`` (``auto``, ``udev``, ``scan``, ``off``).

    ``HotplugUnavailableError`` if ``udev`` is asked for where it cannot work. ``auto`` is udev for the real
    sysfs when its socket opens, else a scan."""
    if mode == "off":
        return None
    if mode == "scan":
        return ScanSource(root, interval)
    real = os.path.realpath(root) == os.path.realpath(REAL_SYSFS_DEVICES)
    if mode == "udev":
        if not real:
            raise HotplugUnavailableError(
                f"udev events describe {REAL_SYSFS_DEVICES}, not {root}; use hotplug: scan"
            )
        return UdevSource()
    if real:
        try:
            return UdevSource()
        except HotplugUnavailableError as exc:
            log.info("usb hot-plug: %s; scanning %s every %g s instead", exc, root, interval)
    return ScanSource(root, interval)


async def watch(source: EventSource, wanted: Collection[str], notify: Callable[[], None]) -> None:
    """Call ``notify()`` for each event about one of the ``wanted`` vendor:product ids (or an unknown one)."""
    async for event in source.events():
        if event.usb_id is None or event.usb_id in wanted:
            log.debug("usb %s %s at %s", event.action, event.usb_id, event.path)
            notify()
