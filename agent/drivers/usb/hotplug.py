"""USB hot-plug: learn at once that a USB device came or went, so its check runs now, not at its interval.

Two sources of the same ``UsbEvent``s:

- ``UdevSource``: the kernel's uevents over netlink (pyudev, imported only when used). Needs the real
  ``/sys`` and a kernel that delivers uevents to this network namespace (containers often do not).
- ``ScanSource``: a scan of a sysfs devices directory every ``interval`` seconds, compared with the last one.
  Works on any tree (the simulator's, a test's) and wherever netlink is not available.

A probe runs ``watch(source, wanted, notify)``: it calls ``notify()`` for every event that concerns one of the
``wanted`` vendor:product ids. The poller turns ``notify`` into an immediate re-check of the device.
``SharedSource`` reads one source for every probe of the agent that watches the same tree: one netlink
socket or one scan loop (and one last reading), not one per device.
"""

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

from agent.drivers.usb.sysfs import DEFAULT_ROOT, SharedScan
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


class ScanSource:
    """Compares a scan of ``root`` every ``interval`` seconds with the previous one.

    ``scans`` reads the tree; the agent gives the one its usb checks of that root share."""

    def __init__(
        self,
        root: Path,
        interval: float,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        scans: SharedScan | None = None,
    ) -> None:
        self.root = root
        self.interval = interval
        self._sleep = sleep
        self._scans = scans if scans is not None else SharedScan(root)

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
        """path -> vendor:product of every USB device directory under ``root`` (interfaces skipped)."""
        try:
            return {d.path: f"{d.vendor}:{d.product}" for d in await self._scans.read()}
        except OSError:
            return {}  # a root that is gone is no devices; the check itself reports why


class SharedSource:
    """One event source read once, its events handed to every ``events()`` iterator open on it.

    It is read from the first iterator opened to the last one closed (or ``close()``); an error reading it
    ends every iterator with that error, and the next one opened reads the source anew.
    """

    def __init__(self, source: EventSource) -> None:
        self.source = source
        self._listeners: set[asyncio.Queue[UsbEvent | Exception | None]] = set()
        self._reading: asyncio.Task[None] | None = None

    async def events(self) -> AsyncIterator[UsbEvent]:
        queue: asyncio.Queue[UsbEvent | Exception | None] = asyncio.Queue()
        self._listeners.add(queue)
        if self._reading is None:
            self._reading = asyncio.create_task(self._read())
        try:
            while (event := await queue.get()) is not None:  # None: the source has no more
                if isinstance(event, Exception):
                    raise event
                yield event
        finally:
            self._listeners.discard(queue)
            if not self._listeners:
                self.close()

    async def _read(self) -> None:
        end: Exception | None = None
        try:
            async for event in self.source.events():
                for queue in self._listeners:
                    queue.put_nowait(event)
        except Exception as exc:  # noqa: BLE001  (handed to the watchers, whose poller logs it)
            end = exc
        self._reading = None
        for queue in self._listeners:
            queue.put_nowait(end)

    def close(self) -> None:
        """Stop reading the source (iterators still open wait for events that no longer come)."""
        if self._reading is not None:
            self._reading.cancel()
            self._reading = None


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


def open_source(
    mode: str, root: Path, interval: float, scans: SharedScan | None = None
) -> EventSource | None:
    """The event source for ``mode`` (``auto``, ``udev``, ``scan``, ``off``); a scan reads with ``scans``.

    ``HotplugUnavailableError`` if ``udev`` is asked for where it cannot work. ``auto`` is udev for the real
    sysfs when its socket opens, else a scan."""
    if mode == "off":
        return None
    if mode == "scan":
        return ScanSource(root, interval, scans=scans)
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
    return ScanSource(root, interval, scans=scans)


async def watch(source: EventSource, wanted: Collection[str], notify: Callable[[], None]) -> None:
    """Call ``notify()`` for each event about one of the ``wanted`` vendor:product ids (or an unknown one)."""
    async for event in source.events():
        if event.usb_id is None or event.usb_id in wanted:
            log.debug("usb %s %s at %s", event.action, event.usb_id, event.path)
            notify()
