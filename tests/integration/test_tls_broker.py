"""Agent and collector talk to the broker over TLS; a broker certificate that fails verification is logged."""

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulator.certs import write_self_signed
from tests.support.collector import admin_token, get
from tests.support.mosquitto import Mosquitto, free_port, wait_port
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


def certificate(folder: Path, name: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.pem", folder / f"{name}-key.pem"
    write_self_signed(cert, key, common_name=name, ip_addresses=["127.0.0.1"], dns_names=["localhost"])
    return cert, key


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[Mosquitto, Path]]:
    cert, key = certificate(tmp_path, "broker")
    workdir = tmp_path / "broker"
    workdir.mkdir()
    broker = Mosquitto("127.0.0.1", free_port(), workdir, extra=f"certfile {cert}\nkeyfile {key}\n")
    broker.start()
    try:
        yield broker, cert
    finally:
        broker.stop()


def spawn(tmp_path: Path, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
    with (tmp_path / f"{name}.log").open("wb") as log:
        return subprocess.Popen([sys.executable, *argv], stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)


def agent_config(tmp_path: Path, broker: Mosquitto, ca_file: Path) -> Path:
    config = {
        "site": "tls-site",
        "agent": "room-1",
        "mqtt": {"host": broker.host, "port": broker.port, "tls": {"ca_file": str(ca_file)}},
        "poll": {"interval": 1, "recheck_count": 0},
        "devices": [
            {"id": "meetup", "model": "meetup", "checks": [{"driver": "usb", "sysfs_root": str(tmp_path)}]}
        ],
    }
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def stop(*processes: subprocess.Popen[bytes]) -> None:
    for process in processes:
        process.terminate()
        process.wait(timeout=15)


def test_agent_and_collector_work_through_a_tls_only_broker(
    tls_broker: tuple[Mosquitto, Path], tmp_path: Path
) -> None:
    broker, ca_file = tls_broker
    web = free_port()
    collector_config = {
        "mqtt": {
            "host": broker.host,
            "port": broker.port,
            "client_id": f"c-{web}",
            "tls": {"ca_file": str(ca_file)},
        },
        "store": {"url": f"sqlite:///{tmp_path / 'collector.db'}"},
        "web": {"host": "127.0.0.1", "port": web},
    }
    (tmp_path / "collector.yaml").write_text(yaml.safe_dump(collector_config))
    token = admin_token(str(collector_config["store"]["url"]))  # type: ignore[index]
    collector = spawn(tmp_path, "collector", ["-m", "collector", "--config", "collector.yaml", "serve"])
    agent = spawn(
        tmp_path, "agent", ["-m", "agent", "--config", str(agent_config(tmp_path, broker, ca_file))]
    )
    try:
        wait_port("127.0.0.1", web, timeout=30)

        def devices() -> list[dict[str, Any]]:
            return [d for d in json.loads(get(web, "/api/devices", token)) if d["state"] == "down"]

        [device] = eventually("the agent's report arrives over TLS", devices, timeout=30)
    finally:
        stop(agent, collector)
    assert device["device"] == "meetup"
    assert device["agent"] == "room-1"


def test_a_broker_certificate_the_agent_does_not_trust_is_logged_with_the_reason(
    tls_broker: tuple[Mosquitto, Path], tmp_path: Path
) -> None:
    broker, _ = tls_broker
    other_ca, _ = certificate(tmp_path, "someone-else")
    agent = spawn(
        tmp_path, "agent", ["-m", "agent", "--config", str(agent_config(tmp_path, broker, other_ca))]
    )
    try:
        eventually(
            "the agent logs why it cannot connect",
            lambda: "cannot reach the broker" in (tmp_path / "agent.log").read_text(),
            timeout=20,
        )
        time.sleep(3)  # several retries with backoff
    finally:
        stop(agent)
    log = (tmp_path / "agent.log").read_text()
    assert f"cannot reach the broker 127.0.0.1:{broker.port}: TLS verification failed: " in log
    assert log.count("cannot reach the broker") == 1  # once per outage, not once per retry
