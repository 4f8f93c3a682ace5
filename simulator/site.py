"""A simulated meeting room: a Rally Bar on the network and a MeetUp on USB, with power and faults.

``SimulatedSite.start()`` brings both devices up, starts the control endpoint and writes
``<state_dir>/site.json`` last, so a reader that finds the file finds a site that is up.
"""

import json
import logging
import os
import shutil
import socket
import threading
from pathlib import Path
from typing import Any, Protocol

from simulator.control import ControlServer
from simulator.errors import SimulatorError, UnknownDeviceError, UnknownFaultError
from simulator.net import loopback_family
from simulator.rallybar import RallyBarAdmin
from simulator.snmpswitch import PoeSwitch, SnmpSwitch, SwitchPort, snmpd_path
from simulator.usbtree import MEETUP_SERIAL, UsbTree, meetup_devices

log = logging.getLogger(__name__)

RESTORE = "restore"
# The example serial number of fwupd's Rally Bar lsusb capture.
RALLY_BAR_SERIAL = "2034FH1002R2"
SLOW_DEFAULT_SECONDS = 5.0


class _Device(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def faults(self) -> tuple[str, ...]: ...

    @property
    def powered(self) -> bool: ...

    def power(self, on: bool) -> None: ...

    def fault(self, name: str, seconds: float | None) -> None: ...

    def describe(self) -> dict[str, Any]: ...


class _RallyBar:
    """Faults: ``slow`` answers each request after ``seconds`` (default 5)."""

    id = "rally-bar"
    faults = ("slow", RESTORE)

    def __init__(self, admin: RallyBarAdmin) -> None:
        self.admin = admin

    @property
    def powered(self) -> bool:
        return self.admin.powered

    def power(self, on: bool) -> None:
        if on:
            self.admin.power_on()
        else:
            self.admin.power_off()

    def fault(self, name: str, seconds: float | None) -> None:
        if name == "slow":
            self.admin.slow_seconds = SLOW_DEFAULT_SECONDS if seconds is None else seconds
        else:
            self.admin.slow_seconds = 0.0

    def describe(self) -> dict[str, Any]:
        active = [f"slow:{self.admin.slow_seconds:g}"] if self.admin.slow_seconds > 0 else []
        return {
            "id": self.id,
            "model": "rally-bar",
            "serial": RALLY_BAR_SERIAL,
            "name": "Rally Bar",
            "https_url": self.admin.url,
            "cert_file": str(self.admin.cert_file.resolve()),
            "powered": self.powered,
            "faults": active,
        }


class _MeetUp:
    """Faults: ``audio-lost`` unplugs only the ``0867`` speakerphone; the camera stays."""

    id = "meetup"
    faults = ("audio-lost", RESTORE)

    def __init__(self, tree: UsbTree, serial: str) -> None:
        self.tree = tree
        self.serial = serial
        self.camera, self.speakerphone = meetup_devices(serial)
        self._parts = (self.camera, self.speakerphone)
        self._powered = False
        self._audio_lost = False

    @property
    def powered(self) -> bool:
        return self._powered

    def power(self, on: bool) -> None:
        self._powered = on
        self._apply()

    def fault(self, name: str, seconds: float | None) -> None:
        self._audio_lost = name == "audio-lost"
        self._apply()

    def _apply(self) -> None:
        if self._powered:
            self.tree.plug(self.camera)
        else:
            self.tree.unplug(self.camera)
        if self._powered and not self._audio_lost:
            self.tree.plug(self.speakerphone)
        else:
            self.tree.unplug(self.speakerphone)

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": "meetup",
            "serial": self.serial,
            "name": "MeetUp",
            "usb": [
                f"{d.vendor_id}:{d.product_id}"
                for d in (self.camera, self.speakerphone)
                if self.tree.present(d)
            ],
            "powered": self.powered,
            "faults": ["audio-lost"] if self._audio_lost else [],
        }


class SimulatedSite:
    """One room: ``rally-bar`` (HTTPS admin page) and ``meetup`` (USB, in a fake sysfs tree).

    Both ``host`` addresses must be loopback; port 0 picks a free port. Faults survive a power cycle
    until ``restore``. With ``switch``, a ``poe-switch`` (a real snmpd) powers the Rally Bar's port; it is
    left out, with a warning, when snmpd is not installed or ``host`` is not IPv4.
    """

    def __init__(
        self,
        state_dir: Path,
        host: str = "127.0.0.1",
        https_port: int = 0,
        control_port: int = 0,
        meetup_serial: str = MEETUP_SERIAL,
        *,
        switch: bool = False,
    ) -> None:
        loopback_family(host)  # refuse a non-loopback host before anything listens
        self.state_dir = state_dir.resolve()
        self.site_file = self.state_dir / "site.json"
        self.sysfs_root = self.state_dir / "sysfs" / "bus" / "usb" / "devices"
        self._control = ControlServer(self, host, control_port)
        rally_bar = _RallyBar(RallyBarAdmin(self.state_dir, host, https_port))
        meetup = _MeetUp(UsbTree(self.sysfs_root), meetup_serial)
        self._devices: dict[str, _Device] = {rally_bar.id: rally_bar, meetup.id: meetup}
        self._switch: PoeSwitch | None = None
        if switch:
            if snmpd_path() is None:
                log.warning("PoE switch left out: snmpd is not installed (Debian: apt-get install snmpd)")
            elif loopback_family(host) != socket.AF_INET:
                log.warning("PoE switch left out: it listens on IPv4 loopback only, not %s", host)
            else:
                ports = [SwitchPort(5, "gi1/0/5", device=rally_bar.id)]  # the Rally Bar's port
                self._switch = PoeSwitch(SnmpSwitch(self.state_dir, ports, host=host))
                self._devices[self._switch.id] = self._switch
        self._lock = threading.RLock()
        self._started = False

    @property
    def control_url(self) -> str:
        return self._control.url

    def start(self) -> None:
        """Power every device on, start the control endpoint, then write ``site.json``."""
        with self._lock:
            if self._started:
                return
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self.site_file.unlink(missing_ok=True)
            shutil.rmtree(self.state_dir / "sysfs", ignore_errors=True)  # whatever a killed run left
            try:
                for device in self._devices.values():
                    device.power(True)
                self._control.start()
            except BaseException:
                self._shutdown()
                raise
            self._started = True
            self._write_site_file()
            log.info("simulated site up: control %s, %s", self.control_url, self.site_file)

    def stop(self) -> None:
        """Remove ``site.json``, stop the control endpoint and power every device off."""
        with self._lock:
            self._started = False
            self._shutdown()

    def _shutdown(self) -> None:
        self.site_file.unlink(missing_ok=True)
        self._control.stop()
        for device in self._devices.values():
            device.power(False)

    def power(self, device_id: str, on: bool) -> dict[str, Any]:
        """Power a device on or off; returns its description."""
        with self._lock:
            device = self._device(device_id)
            device.power(on)
            if self._switch is not None:
                self._switch.device_powered(device_id, on)
            self._write_site_file()
            return device.describe()

    def fault(self, device_id: str, name: str, seconds: float | None = None) -> dict[str, Any]:
        """Inject fault ``name`` (or ``restore``); returns the device's description."""
        with self._lock:
            device = self._device(device_id)
            if name not in device.faults:
                raise UnknownFaultError(
                    f"unknown fault {name!r} for {device_id}: known faults are {', '.join(device.faults)}"
                )
            if seconds is not None and seconds < 0:
                raise SimulatorError(f"seconds must be 0 or more, not {seconds:g}")
            device.fault(name, seconds)
            self._write_site_file()
            return device.describe()

    def devices(self) -> list[dict[str, Any]]:
        with self._lock:
            return [device.describe() for device in self._devices.values()]

    def device(self, device_id: str) -> dict[str, Any]:
        with self._lock:
            return self._device(device_id).describe()

    def known_faults(self, device_id: str) -> tuple[str, ...]:
        return self._device(device_id).faults

    def status(self) -> dict[str, Any]:
        """What ``site.json`` holds: control URL, sysfs root and the devices."""
        return {
            "control_url": self.control_url,
            "sysfs_root": str(self.sysfs_root),
            "devices": self.devices(),
        }

    def _device(self, device_id: str) -> _Device:
        try:
            return self._devices[device_id]
        except KeyError:
            raise UnknownDeviceError(
                f"unknown device {device_id!r}: the site has {', '.join(self._devices)}"
            ) from None

    def _write_site_file(self) -> None:
        if not self._started:
            return
        temp = self.site_file.with_name(f".site.json.{os.getpid()}.tmp")
        temp.write_text(json.dumps(self.status(), indent=2) + "\n")
        temp.replace(self.site_file)  # readers see the old file or the new one, never half of one
