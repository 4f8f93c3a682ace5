"""The running collector's /metrics and /metrics/fleet: a device an agent reports down over the broker shows
as down (counted on the one, its own series on the other), the writer's busy seconds and the devices the
engine looked at are counted, and promtool finds nothing wrong in what either serves."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.collector import FakeAgent
from tests.support.mosquitto import ROOT, Mosquitto, free_port, wait_port
from tests.support.promtool import check_metrics
from tests.support.stream import publish_all
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

DOWN = (
    'hezo_device_state{agent="room-101-pc",device="rally-bar-1",model="rally-bar",site="hq",state="down"} 1.0'
)


def test_a_device_reported_down_shows_on_the_served_metrics(tmp_path: Path, mosquitto: Mosquitto) -> None:
    port = free_port()
    path = tmp_path / "collector.yaml"
    path.write_text(
        f"mqtt: {{host: {mosquitto.host}, port: {mosquitto.port}}}\n"
        f"store: {{url: 'sqlite:///{tmp_path / 'collector.db'}'}}\n"
        f"web: {{host: 127.0.0.1, port: {port}}}\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "collector", "--config", str(path), "serve"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        wait_port("127.0.0.1", port, timeout=60)
        agent = FakeAgent()
        publish_all(mosquitto.host, mosquitto.port, [agent.birth(), agent.state("down")])

        def served() -> str | None:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics/fleet").text
            return text if DOWN in text else None

        fleet = eventually("the device down on /metrics/fleet", served, timeout=30)
        assert 'hezo_agent_online{agent="room-101-pc",site="hq"} 1.0' in fleet
        result = check_metrics(fleet)
        assert (result.returncode, result.stdout + result.stderr) == (0, "")
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert 'hezo_devices{state="down"} 1.0' in text
        assert 'hezo_writer_busy_seconds_total{work="ingest"}' in text

        def looked_at() -> str | None:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            return None if "hezo_incident_devices_evaluated_total 0.0" in text else text

        # The down device's change is due at once: the engine looks at it.
        text = eventually("the engine looking at the changed device", looked_at, timeout=30)
        result = check_metrics(text)
        assert (result.returncode, result.stdout + result.stderr) == (0, "")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
