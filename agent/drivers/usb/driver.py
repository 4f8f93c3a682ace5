"""``usb``: the device's USB functions in the Linux sysfs tree (``/sys/bus/usb/devices``).

Each model shows several USB devices on the bus (a MeetUp: ``046d:0866`` camera and ``046d:0867``
speakerphone). All required functions present means ``up``; none means ``down``; some means ``degraded``
(camera there, audio gone). The root is configurable, so tests and the simulator use a tree of their own.

Hot-plug: the probe watches for USB devices coming and going (``hotplug``: udev netlink, or a
sysfs scan every ``scan_interval`` seconds) and wakes the poller, which checks the device at once instead of
at its next interval. In the agent (``build_in_context``) the usb checks of one sysfs tree share its scans and
its hot-plug source: one reading of the tree serves every device checked at that moment.

Debounce: these devices re-enumerate by themselves, so a function that was present at the last check and is
missing now is given ``settle`` seconds to come back before it counts as missing.
"""

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.catalog import Model, UsbFunction
from agent.drivers.base import CheckResult, Stopwatch, TimedResults
from agent.drivers.context import ProbeContext, ResourceKey
from agent.drivers.usb.hotplug import (
    EventSource,
    HotplugUnavailableError,
    SharedSource,
    open_source,
    watch,
)
from agent.drivers.usb.sysfs import DEFAULT_ROOT, SharedScan
from agent.errors import AgentConfigError

#: How often a settling function is looked for again while it is given time to come back.
SETTLE_STEP = 0.25
_USB_ID = re.compile(r"[0-9a-f]{4}:[0-9a-f]{4}")


class UsbFunctionOption(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="vendor:product in hex, e.g. 046d:0867")
    role: str = "device"
    required: bool = True

    @field_validator("id")
    @classmethod
    def _usb_id(cls, value: str) -> str:
        value = value.lower()
        if not _USB_ID.fullmatch(value):
            raise ValueError("expected vendor:product as two 4-digit hex numbers, e.g. 046d:0867")
        return value


class UsbOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    driver: Literal["usb"]
    sysfs_root: Path = DEFAULT_ROOT
    serial: str | None = Field(None, description="only count USB devices with this serial number")
    functions: list[UsbFunctionOption] | None = Field(None, description="overrides the catalog's USB ids")
    hotplug: Literal["auto", "udev", "scan", "off"] = Field(
        "auto", description="how USB changes are noticed between polls: udev events, a sysfs scan, or not"
    )
    scan_interval: float = Field(1.0, gt=0, le=3600, description="seconds between scans (hotplug: scan)")
    settle: float = Field(
        5.0, ge=0, le=300, description="seconds a vanished function may take to re-enumerate before it counts"
    )


class UsbProbe(TimedResults):
    driver = "usb"

    def __init__(
        self,
        options: UsbOptions,
        functions: tuple[UsbFunction, ...],
        model_name: str,
        source: EventSource | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        scans: SharedScan | None = None,
    ) -> None:
        self.options = options
        self._scans = scans if scans is not None else SharedScan(options.sysfs_root)
        self.functions = functions
        self.model_name = model_name
        self.source = source
        self.target = f"{options.sysfs_root}" + (f" serial={options.serial}" if options.serial else "")
        self._sleep = sleep
        self._clock = clock
        self._present_last: set[str] = set()

    async def watch(self, notify: Callable[[], None]) -> None:
        """Call ``notify()`` whenever one of this device's USB functions comes or goes (forever)."""
        if self.source is not None:
            await watch(self.source, {f.usb_id for f in self.functions}, notify)

    async def _present(self) -> set[str]:
        devices = await self._scans.read()
        if self.options.serial is not None:
            devices = [d for d in devices if d.serial == self.options.serial]
        return {f"{d.vendor}:{d.product}" for d in devices}

    async def _settled(self, present: set[str]) -> tuple[set[str], list[UsbFunction]]:
        """Give functions that were there last time ``settle`` seconds to come back; the ones that did."""

        def vanished(now: set[str]) -> list[UsbFunction]:
            return [f for f in self.functions if f.usb_id in self._present_last and f.usb_id not in now]

        gone = vanished(present)
        if not gone or self.options.settle <= 0:
            return present, []
        deadline = self._clock() + self.options.settle
        still = gone
        while still and self._clock() < deadline:
            await self._sleep(min(SETTLE_STEP, max(0.0, deadline - self._clock())))
            present = await self._present()
            still = vanished(present)
        return present, [f for f in gone if f not in still]

    async def poll(self) -> CheckResult:
        watch = Stopwatch()
        try:
            present = await self._present()
            present, returned = await self._settled(present)
        except OSError as exc:
            # This PC's sysfs could not be read (permissions, a container): nothing learnt of the device.
            return self._result(
                False, f"cannot read {self.options.sysfs_root}: {exc}", watch, inconclusive=True
            )
        self._present_last = {f.usb_id for f in self.functions if f.usb_id in present}
        required = [f for f in self.functions if f.required]
        missing = [f for f in required if f.usb_id not in present]
        seen = [f for f in self.functions if f.usb_id in present]
        metrics = {"usb.functions_present": float(len(seen)), "usb.reenumerated": float(len(returned))}
        if not missing:
            roles = ", ".join(f"{f.role} {f.usb_id}" for f in seen)
            back = ", ".join(f"{f.role} {f.usb_id}" for f in returned)
            note = f" (re-enumerated within {self.options.settle:g} s: {back})" if returned else ""
            return self._result(True, f"present: {roles}{note}", watch, metrics=metrics)
        gone = ", ".join(f"{f.role} {f.usb_id}" for f in missing)
        if len(missing) == len(required):
            return self._result(
                False, f"{self.model_name} not on the USB bus (missing {gone})", watch, metrics=metrics
            )
        detail = f"{self.model_name} incomplete: missing {gone}"
        return self._result(True, detail, watch, degraded=True, metrics=metrics)


def _source(options: UsbOptions, scans: SharedScan | None = None) -> EventSource | None:
    """The check's hot-plug source, opened here: ``AgentConfigError`` if ``udev`` cannot work."""
    try:
        return open_source(options.hotplug, options.sysfs_root, options.scan_interval, scans)
    except HotplugUnavailableError as exc:
        where = f"usb check of {options.sysfs_root}: hotplug: {options.hotplug}"
        raise AgentConfigError(f"{where}: {exc}") from None


def build(
    options: UsbOptions,
    catalog_functions: tuple[UsbFunction, ...],
    model_name: str,
    source: EventSource | None = None,
    scans: SharedScan | None = None,
) -> UsbProbe:
    """The probe, with its own hot-plug source opened here unless given one (see ``_source``)."""
    if options.functions is not None:
        vendor_product = [(f.id.split(":"), f) for f in options.functions]
        functions = tuple(UsbFunction(vp[0], vp[1], f.role, f.required) for vp, f in vendor_product)
    else:
        functions = catalog_functions
    if source is None:
        source = _source(options, scans)
    return UsbProbe(options, functions, model_name, source, scans=scans)


def build_in_context(options: UsbOptions, model: Model, context: ProbeContext) -> UsbProbe:
    """The probe, sharing the scans of its sysfs tree and its hot-plug source with the agent's other usb
    checks of that tree (and, for the source, of the same ``hotplug`` and ``scan_interval``)."""
    root = options.sysfs_root
    scans = context.shared.get(ResourceKey[SharedScan](f"usb.scans {root}"), lambda: SharedScan(root))
    source = None
    if options.hotplug != "off":
        key = ResourceKey[SharedSource](f"usb.hotplug {options.hotplug} {options.scan_interval:g} {root}")
        source = context.shared.get(key, lambda: _shared_source(options, scans))
    return build(options, model.usb, model.name, source, scans)


def _shared_source(options: UsbOptions, scans: SharedScan) -> SharedSource:
    opened = _source(options, scans)
    assert opened is not None, "hotplug: off opens no source"
    return SharedSource(opened)
