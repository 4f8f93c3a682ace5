"""The agent's /metrics, switched on in its config, through a real agent process and a real Mosquitto."""

import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.test_agent_link import agent_config
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.promtool import check_metrics
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

LABELS = {"site": "test-site", "agent": "room-1"}


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    except (urllib.error.URLError, ConnectionError):
        return None
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset({**LABELS, **labels}.items())


def test_a_running_agent_counts_its_polls_and_its_reconnect(mosquitto: Mosquitto, tmp_path: Path) -> None:
    config_path = agent_config(tmp_path, mosquitto)
    port = free_port()
    config = yaml.safe_load(config_path.read_text())
    config["metrics"] = {"listen": f"127.0.0.1:{port}"}
    config_path.write_text(yaml.safe_dump(config))
    with (tmp_path / "agent.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "agent", "--config", str(config_path)], stdout=log, stderr=log
        )
    try:

        def polled_and_connected() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
            found = scrape(port)
            if found is None or found.get(key("hezo_agent_broker_connected")) != 1:
                return None
            return (
                found
                if found.get(key("hezo_agent_poll_duration_seconds_count", driver="usb"), 0) >= 1
                else None
            )

        first = eventually("the agent polled and connected", polled_and_connected)
        assert first[key("hezo_agent_broker_reconnects_total")] == 0
        mosquitto.stop()
        mosquitto.start()

        def reconnected() -> bool:
            found = scrape(port)
            return found is not None and found.get(key("hezo_agent_broker_reconnects_total")) == 1

        eventually("the agent counted its reconnect", reconnected, timeout=60)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            result = check_metrics(answer.read().decode())
        assert (result.returncode, result.stdout + result.stderr) == (0, "")
    finally:
        process.terminate()
        process.wait(timeout=30)
