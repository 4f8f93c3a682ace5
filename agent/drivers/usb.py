"""``usb``: the device's USB functions in the Linux sysfs tree (``/sys/bus/usb/devices``).

Each model shows several USB devices on the bus (a MeetUp: ``046d:0866`` camera and ``046d:0867``
speakerphone). All required functions present means ``up``; none means ``down``; some means ``degraded``
(camera there, audio gone). The root is configurable, so tests and the simulator use a tree of their own.
These devices re-enumerate by themselves: the agent re-checks a missing device before calling it down.
"""

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.catalog import UsbFunction
from agent.drivers.base import CheckResult, Stopwatch

DEFAULT_ROOT = Path("/sys/bus/usb/devices")
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


class UsbProbe:
    driver = "usb"

    def __init__(self, options: UsbOptions, functions: tuple[UsbFunction, ...], model_name: str) -> None:
        self.options = options
        self.functions = functions
        self.model_name = model_name
        self.target = f"{options.sysfs_root}" + (f" serial={options.serial}" if options.serial else "")

    def _result(self, ok: bool, detail: str, watch: Stopwatch, **extra: Any) -> CheckResult:
        return CheckResult(self.driver, self.target, ok, detail, duration_ms=watch.ms(), **extra)

    async def poll(self) -> CheckResult:
        watch = Stopwatch()
        try:
            devices = await asyncio.to_thread(scan, self.options.sysfs_root)
        except OSError as exc:
            return self._result(False, f"cannot read {self.options.sysfs_root}: {exc}", watch)
        if self.options.serial is not None:
            devices = [d for d in devices if d.serial == self.options.serial]
        present = {f"{d.vendor}:{d.product}" for d in devices}
        required = [f for f in self.functions if f.required]
        missing = [f for f in required if f.usb_id not in present]
        seen = [f for f in self.functions if f.usb_id in present]
        metrics = {"usb.functions_present": float(len(seen))}
        if not missing:
            roles = ", ".join(f"{f.role} {f.usb_id}" for f in seen)
            return self._result(True, f"present: {roles}", watch, metrics=metrics)
        gone = ", ".join(f"{f.role} {f.usb_id}" for f in missing)
        if len(missing) == len(required):
            return self._result(
                False, f"{self.model_name} not on the USB bus (missing {gone})", watch, metrics=metrics
            )
        detail = f"{self.model_name} incomplete: missing {gone}"
        return self._result(True, detail, watch, degraded=True, metrics=metrics)


def build(options: UsbOptions, catalog_functions: tuple[UsbFunction, ...], model_name: str) -> UsbProbe:
    if options.functions is not None:
        vendor_product = [(f.id.split(":"), f) for f in options.functions]
        functions = tuple(UsbFunction(vp[0], vp[1], f.role, f.required) for vp, f in vendor_product)
    else:
        functions = catalog_functions
    return UsbProbe(options, functions, model_name)
