"""A whole system of a test's own: simulator, agent and collector as real processes on a real broker."""

import json
import math
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from collector.config import IncidentsConfig
from simulator.agentconfig import agent_config_for, read_site
from tests.support.collector import admin_token
from tests.support.mosquitto import Mosquitto, free_port, wait_port
from tests.support.waiting import eventually

POLL_INTERVAL = 1.0
RECHECK_COUNT = 1
RECHECK_DELAY = 0.5
CONFIRM_WINDOW = 3.0
EVALUATE_EVERY = 0.25

# The longest a confirmed fault may take to become a ticket in a Room: one poll interval until the next check,
# the re-checks (the simulated devices refuse at once), the confirm window, one evaluation period; plus slack
# for a loaded machine running tests in parallel.
DETECTION_BUDGET = POLL_INTERVAL + RECHECK_COUNT * RECHECK_DELAY + CONFIRM_WINDOW + EVALUATE_EVERY + 15.0
CONTRACT = "HZ-TEST-0042"


class Room:
    def __init__(
        self,
        broker: Mosquitto,
        workdir: Path,
        *,
        collector_extra: dict[str, Any] | None = None,
        agent_extra: dict[str, Any] | None = None,
        shipped: bool = False,
    ) -> None:
        """``collector_extra`` and ``agent_extra``: top-level config sections added to the generated files.
        ``shipped``: the agent's poll settings and the collector's confirm window and evaluation period are
        left at their shipped defaults, rather than the fast ones tests use."""
        self.shipped = shipped
        self.evaluate_every = IncidentsConfig().evaluate_every if shipped else EVALUATE_EVERY
        self.collector_extra = collector_extra or {}
        self.agent_extra = agent_extra or {}
        self.broker = broker
        self.workdir = workdir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.web_port = free_port()
        self.site_dir = workdir / "site"

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        with (self.workdir / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, *argv], stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir
            )
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def start(self) -> None:
        collector = {
            "mqtt": {
                "host": self.broker.host,
                "port": self.broker.port,
                "client_id": f"collector-{self.web_port}",
            },
            "store": {"url": f"sqlite:///{self.workdir / 'collector.db'}"},
            "incidents": {}
            if self.shipped
            else {"confirm_window": CONFIRM_WINDOW, "evaluate_every": EVALUATE_EVERY},
            "web": {"host": "127.0.0.1", "port": self.web_port},
        }
        # An admin's token for the test's own API calls and for the CLI's remote commands (client.token_file).
        self.token = admin_token(str(collector["store"]["url"]))  # type: ignore[index]
        token_file = self.workdir / "admin.token"
        token_file.write_text(self.token + "\n")
        collector["client"] = {"token_file": str(token_file)}
        collector.update(self.collector_extra)
        self.collector_config = self.workdir / "collector.yaml"
        self.collector_config.write_text(yaml.safe_dump(collector))
        self._spawn("collector", ["-m", "collector", "--config", str(self.collector_config), "serve"])
        self._spawn("simulator", ["-m", "simulator", "run", "--state-dir", str(self.site_dir)])
        wait_port("127.0.0.1", self.web_port, timeout=30)
        eventually("simulator wrote site.json", (self.site_dir / "site.json").exists, timeout=30)
        self.site = read_site(self.site_dir)
        config = agent_config_for(
            self.site,
            broker_host=self.broker.host,
            broker_port=self.broker.port,
            site="test-site",
            agent="room-1",
            contract=CONTRACT,
            interval=None if self.shipped else POLL_INTERVAL,
            recheck_count=None if self.shipped else RECHECK_COUNT,
            recheck_delay=None if self.shipped else RECHECK_DELAY,
        )
        config.update(self.agent_extra)
        self.agent_config = self.workdir / "agent.yaml"
        self.agent_config.write_text(yaml.safe_dump(config))
        self.start_agent()

    def start_agent(self) -> None:
        self._spawn("agent", ["-m", "agent", "--config", str(self.agent_config)])

    def stop(self) -> None:
        for process in reversed(self.processes.values()):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def kill(self, name: str) -> None:
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait()

    def sim(self, *args: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "simulator", *args, "--state-dir", str(self.site_dir)],
            check=True,
            capture_output=True,
        )

    def power(self, device: str, on: bool) -> None:
        self.sim("power", device, "on" if on else "off")

    def control(self, device: str, on: bool) -> None:
        """Power a device on or off through the simulator's control endpoint: at once, no process started."""
        request = urllib.request.Request(
            f"{self.site['control_url']}/devices/{device}/power",
            data=json.dumps({"on": on}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()

    def api(self, path: str) -> Any:
        """GET ``path`` of the collector's API as the room's admin."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.web_port}{path}", headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            return json.load(answer)

    def evaluations(self) -> float:
        """How many evaluations of the incident rules the collector has completed (its /metrics)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "hezo_incident_evaluations_total":
                    return sample.value
        return 0.0

    def wait_evaluations(self, seconds: float) -> None:
        """Wait until the collector has evaluated enough times to cover ``seconds`` from now (evaluations are
        at least ``EVALUATE_EVERY`` apart): whatever would be decided by then has been."""
        wanted = self.evaluations() + math.ceil(seconds / self.evaluate_every) + 2
        eventually(f"{wanted:g} evaluations", lambda: self.evaluations() >= wanted, timeout=seconds + 30)

    def device(self, device_id: str) -> dict[str, Any] | None:
        return next((d for d in self.api("/api/devices") if d["device"] == device_id), None)

    def agent_online(self) -> bool | None:
        agents = self.api("/api/agents")
        return agents[0]["online"] if agents else None

    def tickets(self, device: str | None = None) -> list[dict[str, Any]]:
        return [t for t in self.api("/api/tickets") if device is None or t["device"] == device]

    def wait_device_state(self, device: str, state: str, timeout: float = 20) -> dict[str, Any]:
        return eventually(
            f"device {device} {state} in the collector",
            lambda: (d := self.device(device)) is not None and d["state"] == state and d,
            timeout,
        )
