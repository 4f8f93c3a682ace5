"""One collector on PostgreSQL under a fleet speaking the real protocol, by fleet size.

Run: python -m tests.bench.bench_scale [--steps 10000 50000 100000 200000] [--steady 60] [--processes 2]

Per step (devices, 10 per agent, each agent its own MQTT connection through ``hezo-sim fleet``), a fresh
Mosquitto on a free loopback port, a fresh PostgreSQL database and a collector process (``serve``). Mosquitto
holds one file descriptor per agent: where the open-file limit holds nearly every agent (95%), the step
runs as many agents of 10 devices as it holds (a few devices fewer, printed); where it holds fewer, with
more devices per agent (the same devices and messages, fewer connections). Either way the step says so.

1. the first connect storm: from the fleet's start until every agent's birth and every device is stored, then
   until ingest has caught up with the telemetry made meanwhile, then until the incident engine has looked at
   every device the storm made due;
2. steady load (telemetry every 30 s per device, 1% flapping) for ``--steady`` seconds: ingest lag p50/p99
   (a telemetry sample's ``ts`` to its message's ``received_at``), CPU (share of one core) and RSS of the
   collector, its receiver process, PostgreSQL, Mosquitto and the fleet simulator, the writer thread's busy
   share and the engine's time per device looked at (from the collector's /metrics), database bytes per day
   at that pace and what the store holds at that pace with the default retention (7 days of samples and
   message identities);
3. 1% of devices die at once: the time from then (as the fleet says) until the last of their Critical tickets
   opened, beside the confirm window (the least it can be), and the writer's busy share and the engine's time
   per device over that window;
4. a reconnect storm: the fleet killed (every will fires) and started again with new boots, until every
   agent is online again on its new boot.

The reference in the same run is the pace the fleet publishes at (one telemetry message per device every
30 s, plus the flapping devices' states and events), beside the pace the collector stored messages at in the
same window. The machine's other work shares its cores: the figures are what this machine gave, not a ceiling.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from tests.support.collector import get, serve
from tests.support.mosquitto import ROOT, Mosquitto, free_port, wait_port
from tests.support.postgres import URL

CONFIRM_WINDOW = 15
#: Days of samples and message identities the default retention keeps (docs/retention.md).
RETENTION_DAYS = 7
#: Open files Mosquitto needs beside one per agent (its listeners, its log, the collector's session).
BROKER_SPARE_FILES = 100
#: Ingest has caught up with the fleet when what it stores was made less than this long ago
#: (``hezo_ingest_behind_seconds``: the broker hands messages over in the order they came, so a backlog shows
#: as old messages being stored). Read off /metrics: a probe of the messages table, twice a second, scanned
#: its day partition and loaded the node it measured.
CAUGHT_UP_S = 2.0
#: The incident engine has caught up too: no device has been due for more than 5 s (the storm's births and
#: states make every device due once; the steady window measures the fleet, not that backlog).
ENGINE_BEHIND = "SELECT count(*) FROM incident_queue WHERE due_at < now() - interval '5 seconds'"
#: How far back (seconds) a message's ``ts`` may lie behind its receipt in the windows measured.
LAG_BOUND = 600
STORED_SINCE = (
    "SELECT count(*) FROM messages WHERE received_at >= to_timestamp(:t)"
    f" AND ts >= to_timestamp(:t) - interval '{LAG_BOUND} seconds'"
)
CONTRACT = "FLEET-0001"


@dataclass
class Fleet:
    """``hezo-sim fleet`` as a process, its JSON lines read as they come."""

    agents: int
    devices: int
    port: int
    processes: int
    process: subprocess.Popen[bytes] | None = None
    lines: list[dict[str, object]] = field(default_factory=list)

    def start(self) -> None:
        command = [sys.executable, "-m", "simulator", "fleet", "--port", str(self.port)]
        command += ["--agents", str(self.agents), "--devices", str(self.devices)]
        command += ["--processes", str(self.processes)]
        self.lines = []
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, cwd=ROOT)
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()

    def _read(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(json.loads(line))

    def running(self) -> list[psutil.Process]:
        """The simulator and its worker processes: the load generator's own share of the machine."""
        assert self.process is not None
        parent = psutil.Process(self.process.pid)
        return [parent, *parent.children(recursive=True)]

    def said(self, event: str) -> list[dict[str, object]]:
        return [line for line in self.lines if line["event"] == event]

    def die(self) -> None:
        """The dying share of the devices dies now (SIGUSR1, which the fleet passes to its processes)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGUSR1)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            for child in psutil.Process(self.process.pid).children(recursive=True):
                child.kill()
            self.process.kill()
            self.process.wait()


class Figures(dict[str, object]):
    """A step's figures, each printed as soon as it is measured (a step cut short keeps what it had)."""

    def __setitem__(self, name: str, value: object) -> None:
        super().__setitem__(name, value)
        print(f"  {name}: {value:.2f}" if isinstance(value, float) else f"  {name}: {value}", flush=True)


@contextmanager
def database() -> Iterator[str]:
    """A fresh PostgreSQL database's URL, dropped afterwards."""
    name = f"hezo_scale_{secrets.token_hex(4)}"
    admin = create_engine(URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


def wait_for(what: str, check: object, timeout: float) -> float:
    """Seconds until ``check()`` is true (to half a second); TimeoutError naming ``what`` past ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():  # type: ignore[operator]
            return time.monotonic() - started
        time.sleep(0.5)
    raise TimeoutError(f"{what}: not within {timeout:.0f} s")


def scalar(engine: object, sql: str, **params: object) -> int:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        return int(conn.execute(text(sql), params).scalar_one() or 0)


def processes_named(*names: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name"]):
        if process.info["name"] in names:
            found.append(process)
    return found


def usage(groups: dict[str, list[psutil.Process]], seconds: float) -> dict[str, tuple[float, float]]:
    """CPU (share of one core) and RSS (MiB) of each group of processes over ``seconds``."""

    def cpu(group: list[psutil.Process]) -> float:
        total = 0.0
        for process in group:
            try:
                times = process.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                continue
        return total

    before = {name: cpu(group) for name, group in groups.items()}
    time.sleep(seconds)
    result = {}
    for name, group in groups.items():
        rss = 0
        for process in group:
            try:
                rss += process.memory_info().rss
            except psutil.Error:
                continue
        result[name] = ((cpu(group) - before[name]) / seconds, rss / 2**20)
    return result


def samples(port: int) -> list[Any]:
    """Every sample of the collector's /metrics."""
    return [
        sample
        for family in text_string_to_metric_families(get(port, "/metrics"))
        for sample in family.samples
    ]


def metric(port: int, name: str) -> float:
    """One unlabelled sample of the collector's /metrics (infinity while it has none)."""
    return next((float(sample.value) for sample in samples(port) if sample.name == name), float("inf"))


class Scrape:
    """The collector's writer and engine counters, read from its /metrics at two moments."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.at, self.busy, self.evaluating, self.looked_at = self._read()

    def _read(self) -> tuple[float, float, float, float]:
        busy = evaluating = looked_at = 0.0
        for sample in samples(self.port):
            if sample.name == "hezo_writer_busy_seconds_total":
                busy += sample.value
                if sample.labels.get("work") == "incident evaluation":
                    evaluating += sample.value
            elif sample.name == "hezo_incident_devices_evaluated_total":
                looked_at += sample.value
        return time.monotonic(), busy, evaluating, looked_at

    def since(self, figures: Figures, window: str) -> None:
        """Set the writer's busy share and the engine's ms per device looked at since this scrape."""
        at, busy, evaluating, looked_at = self._read()
        figures[f"writer busy {window}"] = (busy - self.busy) / (at - self.at)
        devices = looked_at - self.looked_at
        spent = evaluating - self.evaluating
        figures[f"engine ms/device {window}"] = spent / devices * 1000 if devices else 0.0
        figures[f"devices looked at {window}"] = int(devices)


def fleet_shape(devices: int, open_files: int) -> tuple[int, int]:
    """(agents, devices per agent) for ``devices``: agents of 10 devices, as many as the broker's open-file
    limit holds when that is nearly all of them (95%); else agents of more devices, as many as needed."""
    room = open_files - BROKER_SPARE_FILES
    per = 10
    if devices // per <= room or room >= 0.95 * (devices // per):
        return min(devices // per, room), per
    while devices // per > room:
        per *= 2
    return devices // per, per


def step(
    devices: int, steady: float, processes: int, workdir: Path, open_files: int, batch_wait_ms: int
) -> Figures:
    agents, each = fleet_shape(devices, open_files)
    if agents * each != devices or each != 10:
        print(f"  (open-file limit {open_files}: {devices // 10} agents do not fit the broker)", flush=True)
    devices = agents * each
    figures = Figures(devices=devices, agents=agents, **{"devices per agent": each})
    print(f"{devices} devices, {agents} agents of {each} devices:", flush=True)
    broker = Mosquitto("127.0.0.1", free_port(), workdir / "broker", extra="max_connections -1\n")
    broker.workdir.mkdir(parents=True)
    broker.start()
    fleet = Fleet(agents, each, broker.port, processes)
    try:
        with ExitStack() as stack:  # the collector stops before its database is dropped
            url = stack.enter_context(database())
            port = free_port()
            config = workdir / "collector.yaml"
            config.write_text(
                f"mqtt: {{host: 127.0.0.1, port: {broker.port}, client_id: collector-scale}}\n"
                f"store: {{url: '{url}', batch_wait_ms: {batch_wait_ms}}}\n"
                f"web: {{host: 127.0.0.1, port: {port}}}\n"
                f"incidents: {{confirm_window: {CONFIRM_WINDOW}}}\n"
                f"contracts: [{{number: {CONTRACT}, start: 2026-01-01, years: 3, customer: Fleet}}]\n"
            )
            collector = serve(config, workdir)
            stack.callback(stop, collector)
            wait_port("127.0.0.1", port, timeout=60)
            wait_for("subscribed", lambda: json.loads(get(port, "/healthz")).get("status") == "ok", 60)
            engine = create_engine(url)
            fleet.start()
            figures["first storm s"] = wait_for(
                "every device stored",
                lambda: (
                    scalar(engine, "SELECT count(*) FROM devices") >= devices
                    and scalar(engine, "SELECT count(*) FROM agents WHERE online") >= agents
                ),
                timeout=600,
            )
            # The storm's backlog (telemetry made meanwhile) drains before the steady window opens.
            figures["caught up s"] = wait_for(
                f"ingest caught up with the fleet (storing what was made less than {CAUGHT_UP_S:.0f} s ago)",
                lambda: metric(port, "hezo_ingest_behind_seconds") < CAUGHT_UP_S,
                timeout=600,
            )
            figures["engine caught up s"] = wait_for(
                "the incident engine caught up (no device due for more than 5 s)",
                lambda: scalar(engine, ENGINE_BEHIND) == 0,
                timeout=600,
            )
            size_before = scalar(engine, "SELECT pg_database_size(current_database())")
            window_start = time.time()
            counters = Scrape(port)
            assert broker.process is not None
            groups = {
                "collector": [psutil.Process(collector.pid)],
                "receiver": psutil.Process(collector.pid).children(recursive=True),
                "postgres": processes_named("postgres"),
                "mosquitto": [psutil.Process(broker.process.pid)],
                "fleet": fleet.running(),
            }
            for name, (cpu, rss) in usage(groups, steady).items():
                figures[f"{name} cpu"] = cpu
                figures[f"{name} MiB"] = rss
            size_after = scalar(engine, "SELECT pg_database_size(current_database())")
            elapsed = time.time() - window_start
            counters.since(figures, "steady")
            figures["published/s"] = devices / 30 + devices * 0.01 * 4 / 60  # a flap: 2 states, 2 events
            figures["stored/s"] = scalar(engine, STORED_SINCE, t=window_start) / elapsed
            figures["GB/day"] = (size_after - size_before) / elapsed * 86400 / 1e9
            figures["GB held, default retention"] = float(figures["GB/day"]) * RETENTION_DAYS  # type: ignore[arg-type]
            with engine.connect() as conn:
                lags = conn.execute(
                    text(
                        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY lag),"
                        " percentile_cont(0.99) WITHIN GROUP (ORDER BY lag) FROM ("
                        "  SELECT extract(epoch FROM m.received_at - s.ts) AS lag FROM messages m"
                        "  JOIN samples s ON s.site = m.site AND s.agent = m.agent AND s.boot = m.boot"
                        "   AND s.seq = m.seq AND s.idx = 0"
                        "  WHERE m.kind = 'telemetry' AND m.received_at >= to_timestamp(:since)"
                        f"   AND m.ts >= to_timestamp(:since) - interval '{LAG_BOUND} seconds'"
                        f"   AND s.ts >= to_timestamp(:since) - interval '{LAG_BOUND} seconds') AS l"
                    ),
                    {"since": window_start},
                ).one()
            figures["lag p50 s"], figures["lag p99 s"] = float(lags[0] or 0), float(lags[1] or 0)
            counters = Scrape(port)
            fleet.die()  # now, after the steady window, however long the storm took
            wait_for("the fleet says its devices died", lambda: len(fleet.said("died")) >= processes, 120)
            died = sum(int(line["devices"]) for line in fleet.said("died"))  # type: ignore[call-overload]
            figures["died"] = died
            wait_for(
                "every dead device's ticket",
                lambda: scalar(engine, "SELECT count(*) FROM tickets WHERE cause = 'device-down'") >= died,
                timeout=300,
            )
            died_at = min(str(line["at"]) for line in fleet.said("died"))
            with engine.connect() as conn:
                figures["tickets s"] = float(
                    conn.execute(
                        text(
                            "SELECT extract(epoch FROM max(opened_at) - CAST(:at AS timestamptz))"
                            " FROM tickets WHERE cause = 'device-down'"
                        ),
                        {"at": died_at},
                    ).scalar_one()
                )
            counters.since(figures, "dying")
            with engine.connect() as conn:
                for cause, count in conn.execute(text("SELECT cause, count(*) FROM tickets GROUP BY cause")):
                    figures[f"tickets {cause}"] = int(count)
            fleet.kill()
            wait_for(
                "every will stored",
                lambda: scalar(engine, "SELECT count(*) FROM agents WHERE online") == 0,
                timeout=600,
            )
            restarted = time.time()
            fleet.start()
            figures["reconnect storm s"] = wait_for(
                "every agent online on a new boot",
                lambda: (
                    scalar(
                        engine,
                        "SELECT count(*) FROM agents WHERE online AND status_changed_at >= to_timestamp(:t)",
                        t=restarted,
                    )
                    >= agents
                ),
                timeout=600,
            )
            engine.dispose()
    finally:
        fleet.kill()
        broker.stop()
        errors(workdir / "collector.log", figures)
    return figures


def stop(collector: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not stopped within 60 s (said)."""
    if collector.poll() is not None:
        return
    collector.terminate()
    try:
        collector.wait(timeout=60)
    except subprocess.TimeoutExpired:
        print("  the collector did not stop within 60 s of SIGTERM: killed", flush=True)
        collector.kill()
        collector.wait()


def errors(log: Path, figures: Figures) -> None:
    """The collector's errors in the step (a figure measured past an error says less), the first few shown."""
    if not log.exists():
        return
    lines = log.read_text(errors="replace").splitlines()
    found = [line for line in lines if any(level in f" {line} " for level in (" ERROR ", " CRITICAL "))]
    figures["collector errors"] = len(found)
    if found:
        kept = Path(tempfile.gettempdir()) / f"bench_scale_{figures['devices']}_collector.log"
        shutil.copyfile(log, kept)
        print(f"    the collector's log: {kept}", flush=True)
    for line in dict.fromkeys(line[:200] for line in found[:50]):
        print(f"    {line}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[10_000, 50_000, 100_000, 200_000])
    parser.add_argument("--steady", type=float, default=60.0, help="seconds of steady load per step")
    parser.add_argument("--processes", type=int, default=2, help="fleet processes")
    parser.add_argument(
        "--batch-wait-ms", type=int, default=50, help="the collector's store.batch_wait_ms (default 50)"
    )
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # Mosquitto inherits it: one fd per agent
    if shutil.which("mosquitto") is None and not os.path.exists("/usr/sbin/mosquitto"):
        raise SystemExit("bench_scale needs Mosquitto (scripts/system-deps.sh --broker)")
    print(
        f"cores {os.cpu_count()}, open files {hard}, confirm window {CONFIRM_WINDOW} s, "
        f"steady {args.steady:.0f} s"
    )
    for devices in args.steps:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                figures = step(devices, args.steady, args.processes, Path(tmp), hard, args.batch_wait_ms)
            except TimeoutError as exc:
                print(f"{devices:>7} devices: {exc}")
                continue
        shown = ", ".join(
            f"{name} {value:.2f}" if isinstance(value, float) else f"{name} {value}"
            for name, value in figures.items()
        )
        print(shown, flush=True)


if __name__ == "__main__":
    main()
