"""``hezo-collector serve`` under systemd (Type=notify, WatchdogSec): ready once the page answers, the
watchdog fed while it works, stopping said on SIGTERM."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.mosquitto import ROOT, Mosquitto, free_port

pytestmark = pytest.mark.integration


def test_serve_reports_ready_when_the_page_answers_feeds_the_watchdog_and_says_it_stops(
    tmp_path: Path, mosquitto: Mosquitto, notify_socket: tuple[socket.socket, str]
) -> None:
    sock, address = notify_socket
    port = free_port()
    path = tmp_path / "collector.yaml"
    path.write_text(
        f"mqtt: {{host: {mosquitto.host}, port: {mosquitto.port}}}\n"
        f"store: {{url: 'sqlite:///{tmp_path / 'collector.db'}'}}\n"
        f"web: {{host: 127.0.0.1, port: {port}}}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NOTIFY_SOCKET": address, "WATCHDOG_USEC": "200000"}
    process = subprocess.Popen(
        [sys.executable, "-m", "collector", "--config", str(path), "serve"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    stopped = False
    try:
        ready = sock.recv(4096).decode()
        assert ready == f"READY=1\nSTATUS=serving on 127.0.0.1:{port}"
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code in (200, 503)  # it answers
        assert [sock.recv(4096).decode() for _ in range(3)] == ["WATCHDOG=1"] * 3
        process.send_signal(signal.SIGTERM)
        stopped = True
        while (message := sock.recv(4096).decode()) == "WATCHDOG=1":
            pass
        assert message == "STOPPING=1"
    finally:
        if not stopped:
            process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
