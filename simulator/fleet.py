"""``hezo-sim fleet``: many agents speaking the real protocol to one broker, for sizing and benchmarks.

Each simulated agent is its own MQTT connection (its own client id, will and retained status), so the broker
and the collector see what a real fleet shows them: a birth with the agent's devices after every connect, a
retained state per device, telemetry per device every ``telemetry_interval`` seconds (spread evenly), a share
of devices that flap (down for a few seconds, up again, every minute) and, once, a share that dies and stays
down. Killing the process fires every agent's will; starting it again is a reconnect storm of new boots.

One thread drives all the clients of a process through a selector (paho's external event loop), so 10,000
connections cost one thread, not 10,000; ``processes`` splits the agents over several processes. The
simulator imports none of hezo: the envelopes are written here from docs/protocol.md.

The dying share dies ``die_after`` seconds after the start, or when the process gets SIGUSR1 (a benchmark
says when). What happens is printed as JSON lines on standard output (``connected``, ``died``, ``stats``),
which a benchmark reads to know when the storm is over and the moment the devices died.
"""

from __future__ import annotations

import heapq
import json
import multiprocessing
import os
import random
import resource
import selectors
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from simulator.errors import SimulatorError

#: A flapping device is down this long once a minute: shorter than any confirm window, so it never tickets.
FLAP_DOWN_S = 3.0
FLAP_PERIOD_S = 60.0
MODELS = ("rally-bar", "rally-bar-mini", "meetup", "tap-ip", "rally", "tap", "swytch", "rally-camera")


@dataclass(frozen=True)
class FleetPlan:
    """What to simulate. Agents are named ``agent-NNNNN`` and spread over ``sites`` sites (``site-NNNN``)."""

    agents: int
    devices: int = 10
    sites: int = 0  # 0: one site per 10 agents
    telemetry_interval: float = 30.0
    flapping: float = 0.01
    dying: float = 0.01
    die_after: float | None = None
    duration: float | None = None
    contract: str = "FLEET-0001"
    prefix: str = "hezo/v1"
    keepalive: int = 60
    seed: int = 1

    def __post_init__(self) -> None:
        if self.agents < 1 or self.agents > 1_000_000:
            raise SimulatorError(f"agents must be 1 to 1,000,000, got {self.agents}")
        if self.devices < 1 or self.devices > 500:
            raise SimulatorError(f"devices per agent must be 1 to 500, got {self.devices}")
        if self.telemetry_interval <= 0:
            raise SimulatorError(f"telemetry interval must be above 0 s, got {self.telemetry_interval}")
        for name in ("flapping", "dying"):
            share = getattr(self, name)
            if not 0 <= share <= 1:
                raise SimulatorError(f"{name} must be a share from 0 to 1, got {share}")

    @property
    def site_count(self) -> int:
        return self.sites or max(1, self.agents // 10)

    def names(self, index: int) -> tuple[str, str]:
        """The (site, agent) of agent number ``index``."""
        return f"site-{index % self.site_count:04d}", f"agent-{index:05d}"


def timestamp(moment: float) -> str:
    """RFC 3339 in UTC with milliseconds, as agents write it."""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def boot_id(rng: random.Random) -> str:
    """A new start's boot id: the start time in ms as 12 hex digits, then 4 random ones (docs/protocol.md)."""
    return f"{int(time.time() * 1000):012x}{rng.getrandbits(16):04x}"


@dataclass
class FleetAgent:
    """One simulated agent: its identity, its next seq and its devices' states; the messages it makes."""

    plan: FleetPlan
    site: str
    agent: str
    boot: str
    devices: list[str]
    states: dict[str, str] = field(default_factory=dict)
    seq: int = 0
    will_seq: int = 0

    def __post_init__(self) -> None:
        self.states = dict.fromkeys(self.devices, "up")

    def topic(self, *levels: str) -> str:
        return "/".join((self.plan.prefix, self.site, self.agent, *levels))

    def envelope(self, kind: str, body: dict[str, Any], seq: int | None = None) -> bytes:
        if seq is None:
            self.seq += 1
            seq = self.seq
        document = {
            "v": 1,
            "site": self.site,
            "agent": self.agent,
            "boot": self.boot,
            "seq": seq,
            "ts": timestamp(time.time()),
            "kind": kind,
            "body": body,
        }
        return json.dumps(document, separators=(",", ":")).encode()

    def will(self) -> tuple[str, bytes]:
        """The death to register as the next connection's will: seq ``w``; ``w + 1`` is kept for the birth."""
        self.will_seq = self.seq + 1
        self.seq += 2
        body = {"state": "offline", "reason": "connection-lost"}
        return self.topic("status"), self.envelope("death", body, seq=self.will_seq)

    def birth(self) -> tuple[str, bytes]:
        inventory = [
            {
                "id": device,
                "model": MODELS[number % len(MODELS)],
                "serial": f"FL{self.agent[-5:]}{number:03d}",
                "name": device,
                "room": f"Room {self.agent[-5:]}",
                "contract": self.plan.contract,
            }
            for number, device in enumerate(self.devices)
        ]
        body = {
            "state": "online",
            "version": "fleet",
            "hostname": self.agent,
            "will_seq": self.will_seq,
            "dropped": 0,
            "devices": inventory,
        }
        return self.topic("status"), self.envelope("birth", body, seq=self.will_seq + 1)

    def state(self, device: str) -> tuple[str, bytes]:
        state = self.states[device]
        now = timestamp(time.time())
        ok = state == "up"
        check = {
            "driver": "icmp",
            "target": f"{device}.{self.agent}.example",
            "ok": ok,
            "detail": "reachable" if ok else "no answer",
            "ts": now,
            "duration_ms": 1.2,
        }
        body = {
            "device": device,
            "state": state,
            "since": now,
            "reason": "all checks pass" if ok else f"icmp {device}: no answer",
            "checks": [check],
        }
        return self.topic("device", device, "state"), self.envelope("state", body)

    def changed(self, device: str, before: str) -> tuple[str, bytes]:
        body = {
            "type": "state-changed",
            "device": device,
            "from": before,
            "to": self.states[device],
            "reason": f"icmp {device}: {'answers' if self.states[device] == 'up' else 'no answer'}",
            "checks": [],
        }
        return self.topic("event"), self.envelope("event", body)

    def telemetry(self, device: str) -> tuple[str, bytes]:
        now = timestamp(time.time())
        up = self.states[device] == "up"
        samples = [
            {"device": device, "metric": "icmp.rtt_ms", "value": 1.5 if up else 0.0, "ts": now},
            {"device": device, "metric": "icmp.loss_pct", "value": 0.0 if up else 100.0, "ts": now},
        ]
        return self.topic("telemetry"), self.envelope("telemetry", {"samples": samples})


class Connection:
    """A simulated agent's MQTT connection, driven by the process's selector loop."""

    def __init__(self, agent: FleetAgent, host: str, port: int) -> None:
        self.agent = agent
        self.host, self.port = host, port
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"fleet-{agent.site}-{agent.agent}", clean_session=True
        )
        self.client.max_inflight_messages_set(200)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.up = False
        self.dirty = False  # has something to write
        self.connects = 0
        self.retry_at = 0.0

    def open(self) -> bool:
        topic, payload = self.agent.will()
        self.client.will_set(topic, payload, qos=1, retain=True)
        try:
            self.client.connect(self.host, self.port, keepalive=self.agent.plan.keepalive)
        except OSError:
            self.retry_at = time.monotonic() + 1.0
            return False
        return True

    def publish(self, message: tuple[str, bytes], retain: bool = False) -> None:
        self.client.publish(message[0], message[1], qos=1, retain=retain)
        self.dirty = True

    def _on_connect(self, _c: mqtt.Client, _u: object, _f: object, reason: Any, _p: object = None) -> None:
        if reason.is_failure:
            return
        self.up = True
        self.connects += 1
        self.publish(self.agent.birth(), retain=True)
        for device in self.agent.devices:
            self.publish(self.agent.state(device), retain=True)

    def _on_disconnect(self, *_: object) -> None:
        self.up = False
        self.retry_at = time.monotonic() + 1.0


Due = tuple[float, int, int, str]  # when, agent number in the slice, device number, what


class Slice:
    """The agents of one process: ``count`` agents from number ``first``, driven by one selector loop."""

    def __init__(self, plan: FleetPlan, address: tuple[str, int], first: int, count: int, out: Any) -> None:
        self.plan = plan
        self.out = out
        _raise_fd_limit(count + 64)
        # Not for secrets: which devices flap and die, repeatable from the seed.
        self.rng = random.Random(plan.seed * 1_000_003 + first)  # noqa: S311
        self.connections = []
        for index in range(first, first + count):
            site, name = plan.names(index)
            devices = [f"dev-{number:03d}" for number in range(plan.devices)]
            agent = FleetAgent(plan, site, name, boot_id(self.rng), devices)
            self.connections.append(Connection(agent, *address))
        self.selector = selectors.DefaultSelector()
        self.registered: dict[int, Connection] = {}
        self.due: list[Due] = []
        self.dying: list[tuple[int, int]] = []
        self.published = 0
        #: Set by SIGUSR1: the dying share dies at the next turn of the loop (once), whatever ``die_after``.
        self.die_now = False

    def plan_devices(self, start: float) -> None:
        """Each device's first telemetry spread over the interval; flapping devices; who dies."""
        flappers = set()
        for number in range(len(self.connections)):
            for device_number in range(self.plan.devices):
                offset = self.rng.uniform(0, self.plan.telemetry_interval)
                self.due.append((start + offset, number, device_number, "telemetry"))
                if self.rng.random() < self.plan.flapping:
                    flappers.add((number, device_number))
                    first_flap = start + self.rng.uniform(0, FLAP_PERIOD_S)
                    self.due.append((first_flap, number, device_number, "flap-down"))
        heapq.heapify(self.due)
        self.dying = [
            (number, device_number)
            for number in range(len(self.connections))
            for device_number in range(self.plan.devices)
            if (number, device_number) not in flappers and self.rng.random() < self.plan.dying
        ]

    def run(self) -> dict[str, int]:
        """Until ``plan.duration`` (or forever); the counts."""
        start = time.monotonic()
        for connection in self.connections:
            connection.open()
            self.register(connection)
        self.plan_devices(start)
        died = False
        all_up_said = False
        stop = start + self.plan.duration if self.plan.duration else float("inf")
        last_misc = 0.0
        while time.monotonic() < stop:
            now = time.monotonic()
            if not all_up_said and all(c.up for c in self.connections):
                all_up_said = True
                _say(self.out, "connected", agents=len(self.connections), seconds=round(now - start, 3))
            due = self.plan.die_after is not None and now - start >= self.plan.die_after
            if not died and (due or self.die_now):
                died = True
                self.die()
            while self.due and self.due[0][0] <= now:
                self.published += self.fall_due(heapq.heappop(self.due), now)
            self.read(max(0.0, min(0.2, (self.due[0][0] - time.monotonic()) if self.due else 0.2)))
            if time.monotonic() - last_misc >= 1.0:
                last_misc = time.monotonic()
                self.keep_up()
            self.write()
        counts = {
            "agents": len(self.connections),
            "connected": sum(1 for c in self.connections if c.up),
            "connects": sum(c.connects for c in self.connections),
            "telemetry": self.published,
        }
        _say(self.out, "stats", **counts)
        for connection in self.connections:
            connection.client.disconnect()
        return counts

    def die(self) -> None:
        for number, device_number in self.dying:
            connection = self.connections[number]
            device = connection.agent.devices[device_number]
            connection.agent.states[device] = "down"
            connection.publish(connection.agent.state(device), retain=True)
            connection.publish(connection.agent.changed(device, "up"))
        _say(self.out, "died", devices=len(self.dying), at=timestamp(time.time()))

    def fall_due(self, item: Due, now: float) -> int:
        """Do what fell due for one device (telemetry, or a flap's edge), schedule the next; messages sent."""
        _, number, device_number, what = item
        connection = self.connections[number]
        agent = connection.agent
        device = agent.devices[device_number]
        sent = 0
        if what == "telemetry":
            if connection.up:
                connection.publish(agent.telemetry(device))
                sent = 1
            heapq.heappush(self.due, (now + self.plan.telemetry_interval, number, device_number, what))
            return sent
        target = "down" if what == "flap-down" else "up"
        if connection.up and agent.states[device] != target:
            before = agent.states[device]
            agent.states[device] = target
            connection.publish(agent.state(device), retain=True)
            connection.publish(agent.changed(device, before))
            sent = 2
        if what == "flap-down":
            heapq.heappush(self.due, (now + FLAP_DOWN_S, number, device_number, "flap-up"))
        else:
            heapq.heappush(self.due, (now + FLAP_PERIOD_S - FLAP_DOWN_S, number, device_number, "flap-down"))
        return sent

    def read(self, timeout: float) -> None:
        for key, events in self.selector.select(timeout):
            if events & selectors.EVENT_READ:
                key.data.client.loop_read(100)

    def write(self) -> None:
        for connection in self.connections:
            if connection.dirty:
                connection.dirty = False
                if connection.client.want_write():
                    connection.client.loop_write()
                    connection.dirty = connection.client.want_write()

    def keep_up(self) -> None:
        """Keepalive pings; a lost connection opened again (with a new will) once its pause is over."""
        for connection in self.connections:
            connection.client.loop_misc()
            connection.dirty = True
            if connection.client.socket() is None:
                self.forget(connection)
                if time.monotonic() >= connection.retry_at and connection.open():
                    self.register(connection)
            elif _fileno(connection) not in self.registered:
                self.forget(connection)
                self.register(connection)

    def register(self, connection: Connection) -> None:
        fd = _fileno(connection)
        if fd >= 0 and fd not in self.registered:
            self.selector.register(fd, selectors.EVENT_READ, connection)
            self.registered[fd] = connection

    def forget(self, connection: Connection) -> None:
        for fd, held in list(self.registered.items()):
            if held is connection:
                self.selector.unregister(fd)
                del self.registered[fd]


def run_slice(plan: FleetPlan, address: tuple[str, int], first: int, count: int) -> dict[str, int]:
    """Run agents ``first`` to ``first + count - 1``, printing to standard output; the counts. SIGUSR1 makes
    the dying share die now."""
    fleet = Slice(plan, address, first, count, sys.stdout)

    def die(*_: object) -> None:
        fleet.die_now = True

    signal.signal(signal.SIGUSR1, die)
    return fleet.run()


def _fileno(connection: Connection) -> int:
    sock = connection.client.socket()
    return sock.fileno() if sock is not None else -1


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            raise SimulatorError(
                f"{wanted} agents in one process need {wanted} open files; the hard limit is {hard}: "
                "raise it (ulimit -Hn) or use more processes"
            )
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _say(out: Any, event: str, **fields: Any) -> None:
    out.write(json.dumps({"event": event, **fields}) + "\n")
    out.flush()


def run(plan: FleetPlan, host: str, port: int, processes: int = 1) -> None:
    """Run the whole fleet, its agents split over ``processes`` processes, until the duration or a signal."""
    if processes < 1 or processes > 64:
        raise SimulatorError(f"processes must be 1 to 64, got {processes}")
    if processes == 1:
        run_slice(plan, (host, port), 0, plan.agents)
        return
    share, extra = divmod(plan.agents, processes)
    children = []
    first = 0
    for number in range(processes):
        count = share + (1 if number < extra else 0)
        child = multiprocessing.Process(
            target=run_slice, args=(plan, (host, port), first, count), daemon=True
        )
        child.start()
        children.append(child)
        first += count

    def stop(*_: object) -> None:
        for child in children:
            child.kill()
        raise SystemExit(0)

    def die(*_: object) -> None:
        for child in children:
            if child.pid is not None:
                os.kill(child.pid, signal.SIGUSR1)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGUSR1, die)
    for child in children:
        child.join()
