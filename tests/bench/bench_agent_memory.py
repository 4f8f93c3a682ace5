"""Benchmark: the agent's memory polling 1 and 50 devices, beside the interpreter that runs it.

    python -m tests.bench.bench_agent_memory [--devices 50] [--seconds 90] [--switches 2] [--interval 10]

Four processes run side by side for ``--seconds``, each sampled every half second (psutil RSS):

1. reference: the interpreter alone (``python -c``, sleeping);
2. reference: the interpreter after ``import agent.main`` (what any ``hezo-agent`` command costs);
3. the real ``hezo-agent`` with one device;
4. the real ``hezo-agent`` with ``--devices`` devices.

The checks run against local peers, each device its own target: ``https`` (the simulated Rally Bar admin
page over TLS, ``simulator/rallybar.py``), ``icmp`` (a loopback address), ``usb`` (a Rally Bar's functions
in a fake sysfs tree shared by all devices, told apart by serial, ``simulator/usbtree.py``) and ``snmp`` v3
SHA/AES (its port on one of ``--switches`` real snmpd switches, ``simulator/snmpswitch.py``). The switches
share one SNMPv3 user name and each has keys of its own, as switches of different sites do.

``--checks rooms`` (the default): the devices take turns being a Rally Bar on the network (https and icmp),
one on USB (usb) and a Tap IP seen on its PoE switch port (snmp v3). ``--checks all``: every device has all
four checks. The one device of the smaller agent always has all four, so both agents load every driver and
the difference between them is what devices cost.
Both agents publish to a private Mosquitto; at the end the bench reads the retained device states there, so
a run whose devices are not all ``up`` (a memory figure of an agent that failed its checks) says so.

Printed per process: peak RSS (the kernel's high-water mark, ``VmHWM``), steady RSS (median of the samples
in the last third of the run) and what each device adds. Target: the agent with 50 devices under 60 MB.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psutil
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from simulator.rallybar import RallyBarAdmin
from simulator.snmpswitch import SnmpSwitch, SwitchPort, snmpd_path
from simulator.usbtree import UsbDevice, UsbInterface, UsbTree
from tests.support.mosquitto import ROOT, Mosquitto, free_port

RSS_TARGET_MB = 60.0
MB = 1024 * 1024
SAMPLE_EVERY = 0.5
PYTHON = sys.executable
SITE = "bench"
ALL = ("https", "icmp", "usb", "snmp")
CHECKS = {
    "rooms": "in turn https+icmp, usb, snmp v3",
    "all": "https, icmp, usb and snmp v3 each",
}


@dataclass
class Sampled:
    """One process under measurement and its RSS samples (bytes)."""

    label: str
    process: subprocess.Popen[bytes]
    log: Path
    samples: list[int] = field(default_factory=list)
    peak: int = 0

    def sample(self) -> None:
        try:
            self.samples.append(psutil.Process(self.process.pid).memory_info().rss)
            self.peak = max(self.peak, _high_water_mark(self.process.pid))
        except (psutil.NoSuchProcess, OSError):
            pass

    @property
    def steady(self) -> float:
        tail = self.samples[len(self.samples) * 2 // 3 :] or self.samples
        return statistics.median(tail) if tail else 0.0


def _high_water_mark(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


# -------------------------------------------------------------------------------------------------- targets


def rally_bar_usb(serial: str, bus: int) -> tuple[UsbDevice, UsbDevice]:
    """A Rally Bar in USB mode: its video (``089b``) and audio (``0898``) devices, with ``serial``."""
    video = UsbDevice(f"{bus}-1", "089b", "Logitech Rally Bar", serial, "ef", (UsbInterface(0, "0e", "01"),))
    audio = UsbDevice(f"{bus}-2", "0898", "Rally Bar Audio", serial, "00", (UsbInterface(0, "01", "01"),))
    return video, audio


#: ``--checks rooms``: which checks device ``n`` has, by ``n % 3``.
ROOM_KINDS = (("https", "icmp"), ("usb",), ("snmp",))


def device_config(
    n: int, admin: RallyBarAdmin, usb_root: Path, switch: SnmpSwitch, if_index: int, drivers: tuple[str, ...]
) -> dict[str, Any]:
    serial = f"2216RB{n:06d}"
    config: dict[str, Any] = {
        "id": f"room-{n:03d}",
        "model": "rally-bar",
        "serial": serial,
        "checks": [
            {"driver": "https", "url": f"{admin.url}?device={n}"},
            {"driver": "icmp", "host": f"127.0.1.{1 + n % 250}"},
            {"driver": "usb", "sysfs_root": str(usb_root), "serial": serial, "hotplug": "scan"},
            {
                "driver": "snmp",
                "version": "3",
                "host": switch.host,
                "port": switch.port,
                "user": switch.v3_user,
                "auth_protocol": "sha",
                "auth_key": switch.v3_auth_key,
                "priv_protocol": "aes",
                "priv_key": switch.v3_priv_key,
                "if_index": if_index,
            },
        ],
    }
    config["checks"] = [check for check in config["checks"] if check["driver"] in drivers]
    return config


def write_agent(
    workdir: Path, name: str, devices: list[dict[str, Any]], broker: Mosquitto, interval: float
) -> Path:
    folder = workdir / name
    folder.mkdir()
    config = {
        "site": SITE,
        "agent": name,
        "state_dir": str(folder / "state"),
        "mqtt": {"host": broker.host, "port": broker.port},
        "poll": {"interval": interval},
        "devices": devices,
    }
    path = folder / "agent.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def spawn(label: str, argv: list[str], log: Path) -> Sampled:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [PYTHON, *argv], env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=out, stderr=subprocess.STDOUT
        )
    return Sampled(label, process, log)


def retained_states(broker: Mosquitto, timeout: float = 10.0) -> dict[str, dict[str, tuple[str, str]]]:
    """agent -> device -> (state, reason), from the retained state messages on the broker."""
    states: dict[str, dict[str, tuple[str, str]]] = {}
    lock = threading.Lock()
    quiet = threading.Event()
    last = [time.monotonic()]

    def received(_client: Any, _userdata: Any, message: Any) -> None:
        parts = message.topic.split("/")
        body = json.loads(message.payload)["body"]
        with lock:
            states.setdefault(parts[3], {})[body["device"]] = (body["state"], body["reason"])
            last[0] = time.monotonic()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.on_connect = lambda c, *_: c.subscribe(f"hezo/v1/{SITE}/+/device/+/state", qos=1)
    client.on_message = received
    client.connect(broker.host, broker.port)
    client.loop_start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not quiet.is_set():
        time.sleep(0.2)
        with lock:
            if states and time.monotonic() - last[0] > 1.0:
                quiet.set()
    client.loop_stop()
    client.disconnect()
    return states


# --------------------------------------------------------------------------------------------------- main


def run(
    args: argparse.Namespace, workdir: Path
) -> tuple[list[Sampled], dict[str, dict[str, tuple[str, str]]]]:
    broker = Mosquitto("127.0.0.1", free_port(), workdir / "broker")
    (workdir / "broker").mkdir()
    admin = RallyBarAdmin(workdir / "rally-bar")
    usb_root = workdir / "sysfs" / "bus" / "usb" / "devices"
    usb = UsbTree(usb_root)
    per_switch = -(-args.devices // args.switches)
    switches = [
        SnmpSwitch(
            workdir,
            [SwitchPort(p, f"gi1/0/{p}") for p in range(1, per_switch + 1)],
            host=f"127.0.0.{2 + k}",
            name=f"switch-{k}",
            v3_auth_key=f"auth-key-of-switch-{k}",
            v3_priv_key=f"priv-key-of-switch-{k}",
        )
        for k in range(args.switches)
    ]
    processes: list[Sampled] = []
    try:
        broker.start()
        admin.power_on()
        for switch in switches:
            switch.start()
        for n in range(args.devices):
            for part in rally_bar_usb(f"2216RB{n:06d}", n + 1):
                usb.plug(part)
        devices = [
            device_config(
                n,
                admin,
                usb_root,
                switches[n // per_switch],
                1 + n % per_switch,
                ALL if args.checks == "all" else ROOM_KINDS[n % len(ROOM_KINDS)],
            )
            for n in range(args.devices)
        ]
        single = device_config(0, admin, usb_root, switches[0], 1, ALL)
        one = write_agent(workdir, "one", [single], broker, args.interval)
        many = write_agent(workdir, "many", devices, broker, args.interval)
        sleeper = f"import time; time.sleep({args.seconds + 30})"
        processes = [
            spawn("python alone", ["-c", sleeper], workdir / "python.log"),
            spawn("python, import agent.main", ["-c", f"import agent.main; {sleeper}"], workdir / "imp.log"),
            spawn("agent, 1 device", ["-m", "agent", "--config", str(one)], workdir / "one.log"),
            spawn(
                f"agent, {args.devices} devices",
                ["-m", "agent", "--config", str(many)],
                workdir / "many.log",
            ),
        ]
        stop_at = time.monotonic() + args.seconds
        while time.monotonic() < stop_at:
            for sampled in processes:
                sampled.sample()
            for sampled in processes:
                if sampled.process.poll() is not None:
                    raise RuntimeError(f"{sampled.label} exited early:\n{sampled.log.read_text()[-3000:]}")
            time.sleep(SAMPLE_EVERY)
        states = retained_states(broker)
        return processes, states
    finally:
        for sampled in processes:
            sampled.process.terminate()
        for sampled in processes:
            try:
                sampled.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                sampled.process.kill()
                sampled.process.wait()
        for switch in switches:
            switch.stop()
        admin.power_off()
        broker.stop()


def report(processes: list[Sampled], states: dict[str, dict[str, tuple[str, str]]], devices: int) -> None:
    print()
    print(f"{'':32} {'peak RSS MB':>12} {'steady RSS MB':>14} {'samples':>8}")
    for sampled in processes:
        peak, steady = sampled.peak / MB, sampled.steady / MB
        print(f"{sampled.label:32} {peak:12.1f} {steady:14.1f} {len(sampled.samples):8d}")
    _python, imported, one, many = processes
    if devices > 1:
        per_device = (many.steady - one.steady) / (devices - 1)
        print(f"{'per device (steady)':32} {'':12} {per_device / MB:14.3f}")
    imports = (imported.steady - processes[0].steady) / MB
    print(f"{'agent.main import, over python':32} {'':12} {imports:14.1f}")
    ratio = many.steady / MB / RSS_TARGET_MB
    label = f"target (steady, {devices} devices)"
    print(f"{label:32} {RSS_TARGET_MB:12.1f} {'ratio':>8} {ratio:5.2f}")
    for agent, expected in (("one", 1), ("many", devices)):
        found = states.get(agent, {})
        up = sum(1 for state, _reason in found.values() if state == "up")
        print(f"agent {agent}: {up}/{expected} devices up")
        for device, (state, reason) in sorted(found.items()):
            if state != "up":
                print(f"  {device} {state}: {reason[:300]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_agent_memory", description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=50, help="devices of the larger agent (default 50)")
    parser.add_argument("--seconds", type=float, default=90.0, help="length of the run (default 90)")
    parser.add_argument(
        "--checks", choices=("rooms", "all"), default="rooms", help="the devices' checks (default rooms)"
    )
    parser.add_argument("--switches", type=int, default=2, help="snmpd switches, one v3 key each (default 2)")
    parser.add_argument("--interval", type=float, default=10.0, help="the agents' poll.interval (default 10)")
    args = parser.parse_args(argv)
    if snmpd_path() is None:
        print("bench_agent_memory: snmpd is not installed (Debian: apt-get install snmpd)", file=sys.stderr)
        return 2
    if not 2 <= args.devices <= 250 or not 1 <= args.switches <= 50 or not 10 <= args.seconds <= 3600:
        parser.error("--devices 2..250, --switches 1..50, --seconds 10..3600")
    print(
        f"bench_agent_memory: {args.devices} devices ({CHECKS[args.checks]}), {args.switches} "
        f"switch(es), polled every {args.interval:g} s, sampled for {args.seconds:g} s, {os.cpu_count()} CPUs"
    )
    with tempfile.TemporaryDirectory(prefix="bench-agent-memory-") as temp:
        processes, states = run(args, Path(temp))
    report(processes, states, args.devices)
    return 0


if __name__ == "__main__":
    sys.exit(main())
