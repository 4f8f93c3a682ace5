"""Benchmark: the snmp driver against real snmpd switches, beside prometheus-snmp-exporter on the same ones.

    python -m tests.bench.bench_snmp [--switches 4] [--ports 25] [--seconds 10] [--rss-seconds 35]

Targets: ``--switches`` simulated PoE switches (snmpd + pass_persist helper, simulator/snmpswitch.py) on
127.0.0.2, 127.0.0.3, ..., each with ``--ports`` PoE ports: one target is one switch port (the driver's
one GET of sysUpTime, sysDescr, ifAdminStatus, ifOperStatus, pethPsePortDetectionStatus, power).

1. driver: a child process pinned to CPU 0 polls every target in a loop, as fast as it can, for
   ``--seconds``; device polls/s, and the process's CPU seconds and RSS.
2. reference: prometheus-snmp-exporter pinned to CPU 0, with a generated snmp.yml module that reads the same
   OIDs (a GET of the two scalars, a walk of the four port columns), scraped over HTTP
   ``/snmp?target=...&module=hezo_poe`` by 8 client threads for ``--seconds``; scrapes/s and port readings/s
   (one scrape reads every port of a switch). Debian: ``apt-get install prometheus-snmp-exporter``;
   skipped with a message when missing.
3. idle agent: the real ``hezo-agent`` with 50 devices (an snmp check each) polled every 30 s, on a private
   Mosquitto, for ``--rss-seconds`` (two rounds); its RSS and CPU.

The snmpd side runs on CPU 1 (when the machine has two), so CPU 0 measures only the poller.
Targets: >= 500 device polls/s per core; agent RSS <= 60 MB polling 50 devices every 30 s.
"""

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import yaml

from simulator.net import free_port
from simulator.snmpswitch import SnmpSwitch, SwitchPort, snmpd_path
from tests.support.mosquitto import ROOT, Mosquitto, wait_port

POLL_TARGET = 500.0
RSS_TARGET_MB = 60.0
PYTHON = sys.executable


def pin(pid: int, cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(pid, {cpu})


# ---------------------------------------------------------------------------------------------- driver side


async def _poll_loop(targets: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    from agent.drivers.snmp import SnmpOptions, build, close_engine

    probes = [build(SnmpOptions.model_validate(t)) for t in targets]
    # One round first: v3 discovery, ifName look-ups and the engine's first use are not the steady state.
    await asyncio.gather(*(p.poll() for p in probes))
    counts = {"polls": 0, "ok": 0}
    stop_at = time.perf_counter() + seconds
    failures: dict[str, int] = {}

    async def loop(probe: Any) -> None:
        while time.perf_counter() < stop_at:
            result = await probe.poll()
            counts["polls"] += 1
            if result.ok:
                counts["ok"] += 1
            else:
                failures[result.detail] = failures.get(result.detail, 0) + 1

    cpu0 = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(loop(p) for p in probes))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    close_engine()
    rss = psutil.Process().memory_info().rss
    return {**counts, "elapsed": elapsed, "cpu": cpu, "rss": rss, "failures": failures}


def worker(spec_file: str) -> int:
    spec = json.loads(Path(spec_file).read_text())
    if spec.get("profile"):
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        out = asyncio.run(_poll_loop(spec["targets"], spec["seconds"]))
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(35)
    else:
        out = asyncio.run(_poll_loop(spec["targets"], spec["seconds"]))
    print(json.dumps(out))
    return 0


def run_driver(targets: list[dict[str, Any]], seconds: float, workdir: Path, profile: bool) -> dict[str, Any]:
    spec = workdir / "driver-spec.json"
    spec.write_text(json.dumps({"targets": targets, "seconds": seconds, "profile": profile}))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [PYTHON, "-m", "tests.bench.bench_snmp", "--worker", str(spec)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=None if profile else subprocess.DEVNULL,
    )
    pin(process.pid, 0)
    out, _ = process.communicate(timeout=seconds + 120)
    if process.returncode != 0:
        raise RuntimeError(f"driver worker failed with code {process.returncode}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


# ------------------------------------------------------------------------------------------ exporter side

PORT_COLUMNS = {
    "ifAdminStatus": "1.3.6.1.2.1.2.2.1.7",
    "ifOperStatus": "1.3.6.1.2.1.2.2.1.8",
}
POE_COLUMNS = {
    "pethPsePortDetectionStatus": "1.3.6.1.2.1.105.1.1.1.6",
    "cpeExtPsePortPwrConsumption": "1.3.6.1.4.1.9.9.402.1.2.1.9",
}


def exporter_config(community: str) -> dict[str, Any]:
    """An snmp.yml (snmp_exporter 0.21 format) whose one module reads what the driver reads."""
    metrics: list[dict[str, Any]] = [
        {"name": "sysUpTime", "oid": "1.3.6.1.2.1.1.3", "type": "gauge", "help": "switch uptime, 1/100 s"},
        {"name": "sysDescr", "oid": "1.3.6.1.2.1.1.1", "type": "DisplayString", "help": "switch description"},
    ]
    for name, oid in PORT_COLUMNS.items():
        metrics.append(
            {
                "name": name,
                "oid": oid,
                "type": "gauge",
                "help": name,
                "indexes": [{"labelname": "ifIndex", "type": "gauge"}],
            }
        )
    for name, oid in POE_COLUMNS.items():
        metrics.append(
            {
                "name": name,
                "oid": oid,
                "type": "gauge",
                "help": name,
                "indexes": [
                    {"labelname": "pethPsePortGroupIndex", "type": "gauge"},
                    {"labelname": "pethPsePortIndex", "type": "gauge"},
                ],
            }
        )
    return {
        "hezo_poe": {
            "version": 2,
            "auth": {"community": community},
            "max_repetitions": 25,
            "retries": 1,
            "timeout": "2s",
            "get": ["1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.3.0"],
            "walk": [*PORT_COLUMNS.values(), *POE_COLUMNS.values()],
            "metrics": metrics,
        }
    }


def run_exporter(switches: list[SnmpSwitch], seconds: float, workdir: Path) -> dict[str, Any] | None:
    binary = shutil.which("prometheus-snmp-exporter") or shutil.which("snmp_exporter")
    if binary is None:
        print(
            "reference skipped: prometheus-snmp-exporter is not installed "
            "(Debian: apt-get install prometheus-snmp-exporter)"
        )
        return None
    config = workdir / "snmp.yml"
    config.write_text(yaml.safe_dump(exporter_config(switches[0].community), sort_keys=False))
    port = free_port()
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        pin(process.pid, 0)
        wait_port("127.0.0.1", port, timeout=15)
        urls = [f"http://127.0.0.1:{port}/snmp?target={s.host}:{s.port}&module=hezo_poe" for s in switches]
        sample = urllib.request.urlopen(urls[0], timeout=10).read().decode()
        rows = sum(1 for line in sample.splitlines() if line.startswith("ifOperStatus{"))
        if rows != len(switches[0].ports):
            raise RuntimeError(f"exporter read {rows} ports of {len(switches[0].ports)}:\n{sample[:2000]}")
        me = psutil.Process(process.pid)
        cpu0 = sum(me.cpu_times()[:2])
        count = [0]
        lock = threading.Lock()
        stop_at = time.perf_counter() + seconds

        def client(index: int) -> None:
            i = index
            while time.perf_counter() < stop_at:
                with urllib.request.urlopen(urls[i % len(urls)], timeout=10) as answer:
                    answer.read()
                with lock:
                    count[0] += 1
                i += 1

        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        cpu = sum(me.cpu_times()[:2]) - cpu0
        rss = me.memory_info().rss
        return {"scrapes": count[0], "elapsed": elapsed, "cpu": cpu, "rss": rss}
    finally:
        process.terminate()
        process.wait(timeout=10)


# --------------------------------------------------------------------------------------------- idle agent


def run_idle_agent(switch: SnmpSwitch, seconds: float, workdir: Path) -> dict[str, Any]:
    """The real agent, 50 devices polled every 30 s, on a private broker; RSS and CPU after ``seconds``."""
    broker_dir = workdir / "broker"
    broker_dir.mkdir()
    broker = Mosquitto("127.0.0.1", free_port(), broker_dir)
    broker.start()
    ports = sorted(switch.ports)
    devices = [
        {
            "id": f"tap-{n:03d}",
            "model": "tap-ip",
            "checks": [
                {
                    "driver": "snmp",
                    "host": switch.host,
                    "port": switch.port,
                    "community": switch.community,
                    "if_index": ports[n % len(ports)],
                }
            ],
        }
        for n in range(50)
    ]
    config = {
        "site": "bench",
        "agent": "bench-agent",
        "mqtt": {"host": broker.host, "port": broker.port},
        "poll": {"interval": 30},
        "devices": devices,
    }
    config_file = workdir / "agent.yaml"
    config_file.write_text(yaml.safe_dump(config))
    log = (workdir / "agent.log").open("wb")
    process = subprocess.Popen(
        [PYTHON, "-m", "agent", "--config", str(config_file)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        pin(process.pid, 0)
        me = psutil.Process(process.pid)
        time.sleep(seconds)
        if process.poll() is not None:
            raise RuntimeError(f"the agent exited early; see {workdir / 'agent.log'}")
        cpu = sum(me.cpu_times()[:2])
        rss = me.memory_info().rss
        peak = _peak_rss(process.pid)
        return {"cpu": cpu, "rss": rss, "peak": peak, "elapsed": seconds}
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()
        broker.stop()


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


# ------------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_snmp", description=__doc__.split("\n")[0])
    parser.add_argument("--switches", type=int, default=4, help="snmpd instances (default 4)")
    parser.add_argument("--ports", type=int, default=25, help="PoE ports per switch (default 25)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each throughput run")
    parser.add_argument("--rss-seconds", type=float, default=35.0, help="length of the idle agent run")
    parser.add_argument("--v3", action="store_true", help="the driver uses SNMPv3 (SHA/AES)")
    parser.add_argument("--profile", action="store_true", help="cProfile the driver worker (to stderr)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker)
    if snmpd_path() is None:
        print("bench_snmp: snmpd is not installed (Debian: apt-get install snmpd)", file=sys.stderr)
        return 2
    if not 1 <= args.switches <= 200 or not 1 <= args.ports <= 500:
        parser.error("--switches 1..200 and --ports 1..500")

    with tempfile.TemporaryDirectory(prefix="bench-snmp-") as temp:
        workdir = Path(temp)
        switches = [
            SnmpSwitch(
                workdir,
                [SwitchPort(p, f"gi1/0/{p}") for p in range(1, args.ports + 1)],
                host=f"127.0.0.{2 + k}",
                name=f"switch-{k}",
            )
            for k in range(args.switches)
        ]
        try:
            for switch in switches:
                switch.start()
                assert switch._process is not None
                pin(switch._process.pid, 1)
                for child in psutil.Process(switch._process.pid).children(recursive=True):
                    pin(child.pid, 1)
            targets = []
            for switch in switches:
                for port in switch.ports:
                    target: dict[str, Any] = {
                        "driver": "snmp",
                        "host": switch.host,
                        "port": switch.port,
                        "if_index": port,
                        "timeout": 2,
                        "retries": 1,
                    }
                    if args.v3:
                        target.update(
                            version="3",
                            user=switch.v3_user,
                            auth_protocol="sha",
                            auth_key=switch.v3_auth_key,
                            priv_protocol="aes",
                            priv_key=switch.v3_priv_key,
                        )
                    else:
                        target["community"] = switch.community
                    targets.append(target)
            print(
                f"bench_snmp: {len(targets)} targets = {args.switches} snmpd x {args.ports} ports, "
                f"SNMP{'v3 SHA/AES' if args.v3 else 'v2c'}, {args.seconds:g} s per run, CPUs: "
                f"{os.cpu_count()}"
            )
            driver = run_driver(targets, args.seconds, workdir, args.profile)
            exporter = run_exporter(switches, args.seconds, workdir)
            idle = run_idle_agent(switches[0], args.rss_seconds, workdir)
        finally:
            for switch in switches:
                switch.stop()
    report(driver, exporter, idle, args.ports)
    return 0


def row(label: str, figure: str, target: float | None = None, ratio: float | None = None) -> None:
    target_text = "" if target is None else f"{target:g}"
    ratio_text = "" if ratio is None else f"{ratio:.2f}"
    print(f"{label:44} {figure:>12} {target_text:>8} {ratio_text:>7}")


def report(driver: dict[str, Any], exporter: dict[str, Any] | None, idle: dict[str, Any], ports: int) -> None:
    mb = 1024 * 1024
    rate = driver["polls"] / driver["elapsed"]
    per_core = driver["polls"] / driver["cpu"] if driver["cpu"] else float("nan")
    print()
    print(f"{'':44} {'figure':>12} {'target':>8} {'ratio':>7}")
    row("driver: device polls/s (wall, on CPU 0)", f"{rate:.0f}", POLL_TARGET, rate / POLL_TARGET)
    row("driver: device polls per CPU second", f"{per_core:.0f}", POLL_TARGET, per_core / POLL_TARGET)
    row("driver: polls ok / all", f"{driver['ok']}/{driver['polls']}")
    row("driver: CPU s / wall s", f"{driver['cpu']:.1f}/{driver['elapsed']:.1f}")
    row("driver: RSS MB (throughput run)", f"{driver['rss'] / mb:.1f}")
    if driver["failures"]:
        print(f"  failures: {driver['failures']}")
    if exporter is not None:
        scrapes = exporter["scrapes"] / exporter["elapsed"]
        readings = scrapes * ports
        row("snmp_exporter: scrapes/s (on CPU 0)", f"{scrapes:.0f}")
        row("snmp_exporter: port readings/s", f"{readings:.0f}")
        row("  driver polls/s / exporter port readings/s", "", None, rate / readings)
        row("snmp_exporter: CPU s / wall s", f"{exporter['cpu']:.1f}/{exporter['elapsed']:.1f}")
        row("snmp_exporter: RSS MB", f"{exporter['rss'] / mb:.1f}")
    rss = idle["rss"] / mb
    row("agent, 50 devices every 30 s: RSS MB", f"{rss:.1f}", RSS_TARGET_MB, rss / RSS_TARGET_MB)
    row("agent, 50 devices every 30 s: peak RSS MB", f"{idle['peak'] / mb:.1f}")
    row(f"agent, 50 devices every 30 s: CPU s in {idle['elapsed']:g} s", f"{idle['cpu']:.2f}")


if __name__ == "__main__":
    sys.exit(main())
