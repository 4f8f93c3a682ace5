"""A simulated PoE switch: a real net-snmp ``snmpd`` on loopback, its port rows served from our own state.

``snmpd`` runs with only the configuration written here (``-C -c``), its persistent files in the state
directory, the built-in ``system`` and interface tables left out (``-I -...``), and a ``pass_persist`` helper
(``simulator/snmp_pass.py``) answering ``system``, IF-MIB, POWER-ETHERNET-MIB and the per-port power from a
JSON state file. Changing a port rewrites that file; the helper sees the change on the next request.
``sysUpTime`` is served by the helper too, so a reboot is a new boot time, without restarting snmpd.
SNMPv2c (a community) and SNMPv3 (a user with SHA authentication and AES privacy) are both accepted.
"""

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from simulator import snmptrap
from simulator.errors import SimulatorError
from simulator.net import loopback_family

log = logging.getLogger(__name__)

PASS_SCRIPT = Path(__file__).with_name("snmp_pass.py")
# Subtrees the helper answers; snmpd's own modules for them are left out so ours win.
PASS_SUBTREES = (".1.3.6.1.2.1", ".1.3.6.1.4.1.9.9.402")
EXCLUDED_MODULES = "system_mib,sysORTable,interfaces,ifTable,ifXTable"
DEFAULT_COMMUNITY = "public"
DEFAULT_V3_USER = "hezo"
DEFAULT_V3_AUTH_KEY = "hezo-auth-key"
DEFAULT_V3_PRIV_KEY = "hezo-priv-key"
FIRMWARE = "Cisco IOS Software, C2960X Software (C2960X-UNIVERSALK9-M), Version 15.2(7)E{build}"
POE_DELIVERING, POE_SEARCHING, POE_DISABLED, POE_FAULT = 3, 2, 1, 4
START_TIMEOUT_S = 10.0


def snmpd_path() -> str | None:
    """The snmpd binary, or None when net-snmp's agent is not installed."""
    return shutil.which("snmpd") or next(
        (p for p in ("/usr/sbin/snmpd", "/usr/local/sbin/snmpd") if os.access(p, os.X_OK)), None
    )


def free_udp_port(host: str) -> int:
    family = loopback_family(host)
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class SwitchPort:
    """One switch port and the PoE port under it."""

    if_index: int
    name: str
    device: str | None = None
    poe_group: int = 1
    poe_port: int = 0  # 0: same as if_index
    admin: int = 1
    oper: int = 1
    poe: int = POE_DELIVERING
    power_mw: int = 12950

    def __post_init__(self) -> None:
        if self.poe_port == 0:
            self.poe_port = self.if_index

    def set_powered(self, on: bool) -> None:
        """A powered device links up and draws power; an unpowered one leaves the port searching."""
        self.oper = 1 if on else 2
        self.poe = POE_DELIVERING if on else POE_SEARCHING
        self.power_mw = 12950 if on else 0


class SnmpSwitch:
    """One snmpd serving ``ports``; ``start()`` returns once it answers on ``host:port`` (UDP)."""

    def __init__(
        self,
        state_dir: Path,
        ports: list[SwitchPort],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        community: str = DEFAULT_COMMUNITY,
        v3_user: str = DEFAULT_V3_USER,
        v3_auth_key: str = DEFAULT_V3_AUTH_KEY,
        v3_priv_key: str = DEFAULT_V3_PRIV_KEY,
        name: str = "poe-switch",
        trap_targets: list[tuple[str, int]] | None = None,
    ) -> None:
        """``trap_targets``: (host, port) of the trap receivers told of every link and PoE change (v2c, with
        ``community``), as ``snmp-server host`` configures a real switch."""
        if loopback_family(host) != socket.AF_INET:
            raise SimulatorError(f"the simulated switch listens on IPv4 loopback only, not {host!r}")
        self.dir = state_dir.resolve() / name
        self.host = host
        self.port = port
        self.community = community
        self.v3_user = v3_user
        self.v3_auth_key = v3_auth_key
        self.v3_priv_key = v3_priv_key
        self.name = name
        self.ports = {p.if_index: p for p in ports}
        self.trap_targets = list(trap_targets or [])
        self.traps_sent = 0
        self._announced: dict[int, tuple[int, int]] = {p.if_index: (p.oper, p.poe) for p in ports}
        self.boot_time = time.time()
        self.firmware_build = 1
        self.unstable_s = 0.0
        self._process: subprocess.Popen[bytes] | None = None
        self.state_file = self.dir / "state.json"
        self.config_file = self.dir / "snmpd.conf"
        self.log_file = self.dir / "snmpd.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def descr(self) -> str:
        return FIRMWARE.format(build=self.firmware_build)

    def port_of(self, device: str) -> SwitchPort | None:
        return next((p for p in self.ports.values() if p.device == device), None)

    def reboot(self) -> None:
        """The switch restarted: its uptime starts again from zero."""
        self.boot_time = time.time()
        self.write_state()

    def write_state(self) -> None:
        doc = {
            "boot_time": self.boot_time,
            "descr": self.descr,
            "name": self.name,
            "unstable_s": self.unstable_s,
            "ports": [asdict(p) for p in self.ports.values()],
        }
        self.dir.mkdir(parents=True, exist_ok=True)
        temp = self.state_file.with_name(f".state.json.{os.getpid()}.tmp")
        temp.write_text(json.dumps(doc))
        temp.replace(self.state_file)  # the helper reads the old file or the new one, never half
        self._announce()

    def _announce(self) -> None:
        """Send a trap for each port whose link or PoE state changed since the last one (when running)."""
        ticks = int((time.time() - self.boot_time) * 100)
        for port in self.ports.values():
            before = self._announced.get(port.if_index)
            now = (port.oper, port.poe)
            self._announced[port.if_index] = now
            if before is None or not self.trap_targets or not self.running:
                continue
            if before[0] != now[0]:
                message = snmptrap.link_trap(self.community, ticks, port.if_index, port.admin, port.oper)
                snmptrap.send(message, self.trap_targets)
                self.traps_sent += 1
            if before[1] != now[1]:
                message = snmptrap.poe_trap(self.community, ticks, port.poe_group, port.poe_port, port.poe)
                snmptrap.send(message, self.trap_targets)
                self.traps_sent += 1

    def _config(self) -> str:
        for path in (sys.executable, str(PASS_SCRIPT), str(self.state_file)):
            if any(c.isspace() for c in path):
                raise SimulatorError(f"snmpd cannot run a helper from a path with spaces: {path!r}")
        command = f"{sys.executable} {PASS_SCRIPT} {self.state_file}"
        lines = [
            f"agentaddress udp:{self.host}:{self.port}",
            f"rocommunity {self.community} 127.0.0.0/8",  # loopback clients only
            f"createUser {self.v3_user} SHA {self.v3_auth_key} AES {self.v3_priv_key}",
            f"rouser {self.v3_user} priv",
            "dontLogTCPWrappersConnects yes",
            *(f"pass_persist {subtree} {command}" for subtree in PASS_SUBTREES),
        ]
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        """Write the config and state, start snmpd and wait until it serves the port rows."""
        if self.running:
            return
        binary = snmpd_path()
        if binary is None:
            raise SimulatorError("snmpd is not installed (Debian: apt-get install snmpd)")
        if self.port == 0:
            self.port = free_udp_port(self.host)  # kept across power cycles: the switch keeps its address
        self.dir.mkdir(parents=True, exist_ok=True)
        persist = self.dir / "persist"
        shutil.rmtree(persist, ignore_errors=True)  # no user keys or engine boots left from a last run
        persist.mkdir()
        self.write_state()
        self.config_file.write_text(self._config())
        self.config_file.chmod(0o600)  # it holds the community and the v3 keys
        self.log_file.unlink(missing_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "SNMP_PERSISTENT_DIR": str(persist),
            "SNMPCONFPATH": str(self.dir),
            "MIBS": "",
            "MIBDIRS": str(self.dir),
        }
        argv = [
            binary,
            "-f",  # stay in the foreground, our child
            "-C",  # no system configuration files
            "-c",
            str(self.config_file),
            "-I",
            f"-{EXCLUDED_MODULES}",
            "-Lf",
            str(self.log_file),
            "-p",
            str(self.dir / "snmpd.pid"),
        ]
        self._process = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C at the terminal goes to us, and we stop it in order
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        log.info("PoE switch %s serving SNMP on udp:%s:%d", self.name, self.host, self.port)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise SimulatorError(
                    f"snmpd exited at start (code {self._process.returncode}): {self._log_tail()}"
                )
            if self._answers():
                return
            time.sleep(0.05)
        raise SimulatorError(
            f"snmpd did not answer on udp:{self.host}:{self.port} within {START_TIMEOUT_S:g} s"
        )

    def _log_tail(self) -> str:
        try:
            return " | ".join(self.log_file.read_text(errors="replace").strip().splitlines()[-3:])
        except OSError:
            return "no log"

    def _answers(self) -> bool:
        """Whether snmpd answers an SNMPv2c GET of sysUpTime.0 (hand-encoded, no SNMP library needed)."""
        community = self.community.encode()
        oid = bytes([0x2B, 6, 1, 2, 1, 1, 3, 0])  # 1.3.6.1.2.1.1.3.0
        varbind = _tlv(0x30, _tlv(0x06, oid) + b"\x05\x00")
        pdu = _tlv(
            0xA0, _tlv(0x02, b"\x01") + _tlv(0x02, b"\x00") + _tlv(0x02, b"\x00") + _tlv(0x30, varbind)
        )
        message = _tlv(0x30, _tlv(0x02, b"\x01") + _tlv(0x04, community) + pdu)
        with socket.socket(loopback_family(self.host), socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.5)
            try:
                sock.sendto(message, (self.host, self.port))
                return bool(sock.recv(4096))
            except OSError:
                return False

    def stop(self) -> None:
        """Stop snmpd (and with it the helper); the switch is then dead on the network."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)

    def describe(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "community": self.community,
            "v3_user": self.v3_user,
            "v3_auth_key": self.v3_auth_key,
            "v3_priv_key": self.v3_priv_key,
            "running": self.running,
            "trap_targets": [list(target) for target in self.trap_targets],
            "firmware": self.descr,
            "ports": [asdict(p) for p in self.ports.values()],
        }


def _tlv(tag: int, value: bytes) -> bytes:
    if len(value) < 0x80:
        return bytes([tag, len(value)]) + value
    length = len(value).to_bytes(2, "big")
    return bytes([tag, 0x82]) + length + value


class PoeSwitch:
    """The switch as a device of the simulated site: powered means snmpd runs.

    Faults: ``port-off`` (PoE disabled on the device ports: no power, link down), ``poe-fault`` (PoE fault
    while the link stays up), ``unstable`` (every other answer ``seconds`` late, default 3), ``reboot``
    (uptime starts again), ``firmware`` (a new version in sysDescr), ``restore``. The ports follow the power
    of the devices on them: a device powered off leaves its port down and searching.
    """

    id = "poe-switch"
    faults = ("port-off", "poe-fault", "unstable", "reboot", "firmware", "restore")
    serial = "FOC2034X0AB"
    UNSTABLE_DEFAULT_S = 3.0

    def __init__(self, switch: SnmpSwitch) -> None:
        self.switch = switch
        self._device_powered = {p.device: True for p in switch.ports.values() if p.device}
        self._port_off = False
        self._poe_fault = False

    @property
    def powered(self) -> bool:
        return self.switch.running

    def power(self, on: bool) -> None:
        if on:
            self.switch.boot_time = time.time()  # powering on is starting from zero
            self._apply()
            self.switch.start()
        else:
            self.switch.stop()

    def device_powered(self, device: str, on: bool) -> None:
        """A device on one of the ports was powered on or off."""
        if device in self._device_powered:
            self._device_powered[device] = on
            self._apply()

    def fault(self, name: str, seconds: float | None) -> None:
        if name == "port-off":
            self._port_off = True
        elif name == "poe-fault":
            self._poe_fault = True
        elif name == "unstable":
            self.switch.unstable_s = self.UNSTABLE_DEFAULT_S if seconds is None else seconds
        elif name == "reboot":
            self.switch.boot_time = time.time()
        elif name == "firmware":
            self.switch.firmware_build += 1
        else:
            self._port_off = self._poe_fault = False
            self.switch.unstable_s = 0.0
        self._apply()

    def _apply(self) -> None:
        for port in self.switch.ports.values():
            if port.device is None:
                continue
            if self._port_off:
                port.set_powered(False)
                port.poe = POE_DISABLED
            elif not self._device_powered[port.device]:
                port.set_powered(False)
            elif self._poe_fault:
                port.set_powered(True)
                port.poe, port.power_mw = POE_FAULT, 0
            else:
                port.set_powered(True)
        self.switch.write_state()

    def describe(self) -> dict[str, Any]:
        active = [name for name, on in (("port-off", self._port_off), ("poe-fault", self._poe_fault)) if on]
        if self.switch.unstable_s > 0:
            active.append(f"unstable:{self.switch.unstable_s:g}")
        return {
            "id": self.id,
            "model": "poe-switch",
            "serial": self.serial,
            "name": "PoE switch",
            "powered": self.powered,
            "faults": active,
            "snmp": self.switch.describe(),
        }
