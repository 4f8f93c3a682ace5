"""Under systemd (Type=notify, WatchdogSec) the agent says when it is ready and keeps the watchdog fed."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.mosquitto import Mosquitto

pytestmark = pytest.mark.integration


def test_the_agent_reports_ready_feeds_the_watchdog_and_says_it_is_stopping(
    mosquitto: Mosquitto, tmp_path: Path, notify_socket: tuple[socket.socket, str]
) -> None:
    sock, address = notify_socket
    config = {
        "site": "s",
        "agent": "a",
        "mqtt": {"host": mosquitto.host, "port": mosquitto.port},
        "devices": [
            {"id": "m", "model": "meetup", "checks": [{"driver": "usb", "sysfs_root": str(tmp_path)}]}
        ],
    }
    (tmp_path / "agent.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "NOTIFY_SOCKET": address, "WATCHDOG_USEC": "200000"}
    agent = subprocess.Popen(
        [sys.executable, "-m", "agent", "--config", str(tmp_path / "agent.yaml")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        received = [sock.recv(4096).decode() for _ in range(4)]
        assert received[0].startswith("READY=1\nSTATUS=polling 1 device(s), boot ")
        assert received[1:] == ["WATCHDOG=1"] * 3
        agent.send_signal(signal.SIGTERM)
        while (message := sock.recv(4096).decode()) == "WATCHDOG=1":
            pass
        assert message == "STOPPING=1"
        assert agent.wait(timeout=15) == 0
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
