"""A simulated meeting room: a Rally Bar on the network, a MeetUp on USB and a Rally system that Logitech Sync
reports (through a fake Sync Cloud API), with power and faults.

``SimulatedSite.start()`` brings both devices up, starts the control endpoint and writes
``<state_dir>/site.json`` last, so a reader that finds the file finds a site that is up.
"""

import json
import logging
import os
import shutil
import socket
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from simulator.control import ControlServer
from simulator.errors import SimulatorError, UnknownDeviceError, UnknownFaultError
from simulator.net import loopback_family
from simulator.rallybar import RallyBarAdmin
from simulator.snmpswitch import PoeSwitch, SnmpSwitch, SwitchPort, free_udp_port, snmpd_path
from simulator.syncapi import SYNC_FAULTS, SyncCloudApi, demo_org
from simulator.usbtree import MEETUP_SERIAL, UsbTree, meetup_devices

log = logging.getLogger(__name__)

RESTORE = "restore"
# The example serial number of fwupd's Rally Bar lsusb capture.
RALLY_BAR_SERIAL = "2034FH1002R2"
SLOW_DEFAULT_SECONDS = 5.0
RALLY_SERIAL = "2210FDZ2AB78"
REENUMERATE_DEFAULT_SECONDS = 1.0
CERT_EXPIRING_DEFAULT = timedelta(days=3)


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
    """Faults: ``slow`` answers each request after ``seconds`` (default 5); ``cert-expiring`` presents its
    certificate re-dated to expire in ``seconds`` (default 3 days); ``cert-expired`` one that expired a day
    ago. Re-dated, the certificate is no longer the one a client pinned: see ``cert_days`` of the site for a
    pinned certificate near expiry.
    """

    id = "rally-bar"
    faults = ("slow", "cert-expiring", "cert-expired", RESTORE)

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
        elif name == "cert-expiring":
            left = CERT_EXPIRING_DEFAULT if seconds is None else timedelta(seconds=seconds)
            self.admin.serve_certificate(expires_in=left)
        elif name == "cert-expired":
            self.admin.serve_certificate(expires_in=-timedelta(days=1))
        else:
            self.admin.slow_seconds = 0.0
            self.admin.serve_certificate(expires_in=None)

    def describe(self) -> dict[str, Any]:
        active = [f"slow:{self.admin.slow_seconds:g}"] if self.admin.slow_seconds > 0 else []
        left = self.admin.cert_expires_in
        if left is not None:
            seconds = left.total_seconds()
            active.append("cert-expired" if seconds < 0 else f"cert-expiring:{seconds:g}")
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
    """Faults: ``audio-lost`` unplugs only the ``0867`` speakerphone; the camera stays. ``reenumerate``
    makes both USB devices vanish and come back after ``seconds`` (default 1), as Rally Bar family devices
    do by themselves; it ends by itself."""

    id = "meetup"
    faults = ("audio-lost", "reenumerate", RESTORE)

    def __init__(self, tree: UsbTree, serial: str) -> None:
        self.tree = tree
        self.serial = serial
        self.camera, self.speakerphone = meetup_devices(serial)
        self._parts = (self.camera, self.speakerphone)
        self._powered = False
        self._audio_lost = False
        self._gone_until: threading.Timer | None = None
        self._lock = threading.RLock()
        self.on_change: Callable[[], None] = lambda: None

    @property
    def powered(self) -> bool:
        return self._powered

    def power(self, on: bool) -> None:
        with self._lock:
            self._powered = on
            self._apply()

    def fault(self, name: str, seconds: float | None) -> None:
        with self._lock:
            if name == "reenumerate":
                self._reenumerate(REENUMERATE_DEFAULT_SECONDS if seconds is None else seconds)
                return
            self._audio_lost = name == "audio-lost"
            self._apply()

    def _reenumerate(self, seconds: float) -> None:
        if self._gone_until is not None:
            self._gone_until.cancel()
        timer = threading.Timer(seconds, self._back)
        timer.daemon = True
        self._gone_until = timer
        self._apply()
        timer.start()

    def _back(self) -> None:
        with self._lock:
            self._gone_until = None
            self._apply()
        self.on_change()

    def _apply(self) -> None:
        away = self._gone_until is not None
        if self._powered and not away:
            self.tree.plug(self.camera)
        else:
            self.tree.unplug(self.camera)
        if self._powered and not self._audio_lost and not away:
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
            "faults": (["audio-lost"] if self._audio_lost else [])
            + (["reenumerate"] if self._gone_until is not None else []),
        }


class _SyncRally:
    """A Rally system known only through Sync. Power off makes it ``Offline`` there; faults are Sync's view:
    ``offline``, ``mic-pod-lost`` (1 of 2 mic pods), ``health-warning``, ``firmware-changed``."""

    id = "rally"
    faults = (*SYNC_FAULTS, RESTORE)

    def __init__(self, api: SyncCloudApi) -> None:
        device = api.device(sim_id=self.id)
        if device is None:
            raise SimulatorError("the fake Sync organisation has no Rally system")
        self.api = api
        self.sync = device

    @property
    def powered(self) -> bool:
        return self.sync.powered

    def power(self, on: bool) -> None:
        self.sync.set_powered(on)

    def fault(self, name: str, seconds: float | None) -> None:
        if name == RESTORE:
            self.sync.restore()
        else:
            self.sync.fault(name)

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": "rally",
            "serial": self.sync.serial,
            "name": "Rally system",
            "sync_device_id": self.sync.id,
            "powered": self.powered,
            "faults": sorted(self.sync.faults),
        }


class _SyncService:
    """The (fake) Sync Cloud API itself: power off refuses connections; ``unstable`` answers every other
    request 503 and the others after ``seconds`` (default 2)."""

    id = "sync-api"
    faults = ("unstable", RESTORE)

    def __init__(self, api: SyncCloudApi) -> None:
        self.api = api

    @property
    def powered(self) -> bool:
        return self.api.powered

    def power(self, on: bool) -> None:
        if on:
            self.api.power_on()
        else:
            self.api.power_off()

    def fault(self, name: str, seconds: float | None) -> None:
        if name == "unstable":
            self.api.unstable_seconds = 2.0 if seconds is None else seconds
        else:
            self.api.unstable_seconds = None

    def describe(self) -> dict[str, Any]:
        unstable = self.api.unstable_seconds
        return {
            "id": self.id,
            "model": "sync-cloud-api",
            "serial": self.api.org_id,
            "name": "Logitech Sync Cloud API",
            "service": True,
            "base_url": self.api.base_url,
            "powered": self.powered,
            "faults": [] if unstable is None else [f"unstable:{unstable:g}"],
        }


class SimulatedSite:
    """One room: ``rally-bar`` (HTTPS admin page), ``meetup`` (USB, in a fake sysfs tree) and ``rally`` (seen
    through Logitech Sync), and ``sync-api``, the fake Sync Cloud API that also lists the Rally Bar.

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
        sync_port: int = 0,
        room: str = "Room 101",
        cert_days: float = 365,
        switch: bool = False,
    ) -> None:
        loopback_family(host)  # refuse a non-loopback host before anything listens
        self.state_dir = state_dir.resolve()
        self.site_file = self.state_dir / "site.json"
        self.sysfs_root = self.state_dir / "sysfs" / "bus" / "usb" / "devices"
        self._control = ControlServer(self, host, control_port)
        rally_bar = _RallyBar(RallyBarAdmin(self.state_dir, host, https_port, cert_days))
        meetup = _MeetUp(UsbTree(self.sysfs_root), meetup_serial)
        self.sync_api = SyncCloudApi(
            self.state_dir, demo_org(room, RALLY_SERIAL, RALLY_BAR_SERIAL), host, sync_port
        )
        rally, sync_service = _SyncRally(self.sync_api), _SyncService(self.sync_api)
        meetup.on_change = self._changed_by_itself
        self._devices: dict[str, _Device] = {
            rally_bar.id: rally_bar,
            meetup.id: meetup,
            rally.id: rally,
            sync_service.id: sync_service,
        }
        self._switch: PoeSwitch | None = None
        if switch:
            if snmpd_path() is None:
                log.warning("PoE switch left out: snmpd is not installed (Debian: apt-get install snmpd)")
            elif loopback_family(host) != socket.AF_INET:
                log.warning("PoE switch left out: it listens on IPv4 loopback only, not %s", host)
            else:
                ports = [SwitchPort(5, "gi1/0/5", device=rally_bar.id)]  # the Rally Bar's port
                # Where the agent will listen for the switch's traps: a port picked now, told in site.json.
                traps = [(host, free_udp_port(host))]
                self._switch = PoeSwitch(SnmpSwitch(self.state_dir, ports, host=host, trap_targets=traps))
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
            twin = self.sync_api.device(sim_id=device_id)
            if twin is not None:
                twin.set_powered(on)  # Sync sees a device that loses power go Offline
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
        """What ``site.json`` holds: control URL, sysfs root, the Sync account and the devices."""
        return {
            "control_url": self.control_url,
            "sysfs_root": str(self.sysfs_root),
            "sync_api": self.sync_api.account(),
            "devices": self.devices(),
        }

    def _device(self, device_id: str) -> _Device:
        try:
            return self._devices[device_id]
        except KeyError:
            raise UnknownDeviceError(
                f"unknown device {device_id!r}: the site has {', '.join(self._devices)}"
            ) from None

    def _changed_by_itself(self) -> None:
        with self._lock:
            self._write_site_file()

    def _write_site_file(self) -> None:
        if not self._started:
            return
        temp = self.site_file.with_name(f".site.json.{os.getpid()}.tmp")
        temp.write_text(json.dumps(self.status(), indent=2) + "\n")
        temp.replace(self.site_file)  # readers see the old file or the new one, never half of one
