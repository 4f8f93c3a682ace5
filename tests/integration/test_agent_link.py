"""The agent announces itself on its status topic, and the broker announces it when it vanishes."""

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from protocol import decode
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt import Listener, Received

pytestmark = pytest.mark.integration


def agent_config(tmp_path: Path, broker: Mosquitto) -> Path:
    sysfs = tmp_path / "sysfs"
    sysfs.mkdir()
    config = {
        "site": "test-site",
        "agent": "room-1",
        "contract": "HZ-TEST-1",
        "mqtt": {"host": broker.host, "port": broker.port, "keepalive": 5},
        "poll": {"interval": 1, "recheck_count": 0, "recheck_delay": 0},
        "devices": [
            {
                "id": "meetup",
                "model": "meetup",
                "serial": "SER1",
                "checks": [{"driver": "usb", "sysfs_root": str(sysfs)}],
            }
        ],
    }
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def listener(mosquitto: Mosquitto) -> Iterator[Listener]:
    listening = Listener(mosquitto.host, mosquitto.port, "hezo/v1/test-site/#")
    yield listening
    listening.close()


def status(kind: str, reason: str | None = None):  # type: ignore[no-untyped-def]
    def match(message: Received) -> bool:
        if not message.topic.endswith("/status"):
            return False
        envelope = decode(message.payload)
        return envelope.kind == kind and (reason is None or envelope.body.get("reason") == reason)

    return match


@pytest.fixture
def agent(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The agent as a process of its own, watching one MeetUp that is not plugged in; killed afterwards."""
    config = agent_config(tmp_path, mosquitto)
    with (tmp_path / "agent.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "agent", "--config", str(config)], stdout=log, stderr=log
        )
    yield process
    if process.poll() is None:
        process.kill()
    process.wait()


def test_birth_carries_inventory_and_contract(
    mosquitto: Mosquitto, listener: Listener, agent: subprocess.Popen[bytes]
) -> None:
    birth = decode(listener.wait_for(status("birth")).payload)
    assert birth.body["devices"] == [
        {
            "id": "meetup",
            "model": "meetup",
            "serial": "SER1",
            "name": None,
            "room": None,
            "contract": "HZ-TEST-1",
        }
    ]
    assert birth.body["will_seq"] < birth.seq


def test_sigkill_makes_the_broker_publish_the_will(
    mosquitto: Mosquitto, listener: Listener, agent: subprocess.Popen[bytes]
) -> None:
    birth = decode(listener.wait_for(status("birth")).payload)
    agent.send_signal(signal.SIGKILL)
    agent.wait()
    death = decode(listener.wait_for(status("death", "connection-lost")).payload)
    assert death.boot == birth.boot
    assert death.seq == birth.body["will_seq"]


def test_sigterm_says_goodbye_and_exits_cleanly(
    mosquitto: Mosquitto, listener: Listener, agent: subprocess.Popen[bytes]
) -> None:
    listener.wait_for(status("birth"))
    agent.send_signal(signal.SIGTERM)
    assert agent.wait(timeout=15) == 0
    listener.wait_for(status("death", "shutdown"))
    assert not [
        m for m in listener.messages if m.topic.endswith("/status") and b"connection-lost" in m.payload
    ]


def test_a_device_missing_from_the_bus_is_published_down_with_evidence(
    mosquitto: Mosquitto, listener: Listener, agent: subprocess.Popen[bytes]
) -> None:
    listener.wait_for(lambda m: m.topic.endswith("/device/meetup/state"))
    # A subscriber that comes later (a restarted collector) still gets the state: it is retained.
    late = Listener(mosquitto.host, mosquitto.port, "hezo/v1/test-site/room-1/device/+/state")
    try:
        message = late.wait_for(lambda m: m.retain)
    finally:
        late.close()
    state = decode(message.payload)
    assert state.body["state"] == "down"
    assert (
        state.body["checks"][0]["detail"]
        == "MeetUp not on the USB bus (missing video 046d:0866, audio 046d:0867)"
    )


def test_the_agent_reconnects_after_a_broker_restart_and_announces_itself_again(
    mosquitto: Mosquitto, listener: Listener, agent: subprocess.Popen[bytes]
) -> None:
    first = decode(listener.wait_for(status("birth")).payload)
    mosquitto.stop()
    mosquitto.start()  # same port; the listener and the agent both reconnect with backoff

    def later_birth(message: Received) -> bool:
        return status("birth")(message) and decode(message.payload).seq > first.seq

    second = decode(listener.wait_for(later_birth, timeout=60).payload)
    assert second.boot == first.boot  # the same process, a new connection
    assert second.body["will_seq"] > first.seq  # a fresh will was registered for the new connection


def test_after_an_outage_that_fills_the_spool_the_birth_still_goes_out(
    mosquitto: Mosquitto, listener: Listener, tmp_path: Path
) -> None:
    # A MeetUp that is present, polled fast: telemetry every 0.1 s, into a spool of 4 KiB.
    sysfs = tmp_path / "busy-sysfs"
    for name, product in (("1-2", "0866"), ("1-3", "0867")):
        (sysfs / name).mkdir(parents=True)
        (sysfs / name / "idVendor").write_text("046d\n")
        (sysfs / name / "idProduct").write_text(f"{product}\n")
    config = {
        "site": "test-site",
        "agent": "room-2",
        "mqtt": {"host": mosquitto.host, "port": mosquitto.port},
        "spool": {"max_bytes": 4096},
        "poll": {"interval": 0.1, "recheck_count": 0},
        "devices": [
            {"id": "meetup", "model": "meetup", "checks": [{"driver": "usb", "sysfs_root": str(sysfs)}]}
        ],
    }
    (tmp_path / "busy.yaml").write_text(yaml.safe_dump(config))
    with (tmp_path / "busy.log").open("wb") as log:
        busy = subprocess.Popen(
            [sys.executable, "-m", "agent", "--config", str(tmp_path / "busy.yaml")], stdout=log, stderr=log
        )
    try:
        first = decode(listener.wait_for(lambda m: m.topic.endswith("room-2/status")).payload)
        mosquitto.stop()
        time.sleep(2)  # some 20 telemetry messages meet a full spool
        mosquitto.start()

        def later_birth(message: Received) -> bool:
            if not message.topic.endswith("room-2/status"):
                return False
            envelope = decode(message.payload)
            return envelope.kind == "birth" and envelope.seq > first.seq

        second = decode(listener.wait_for(later_birth, timeout=60).payload)
    finally:
        busy.kill()
        busy.wait()
    assert second.body["dropped"] > 0  # telemetry was evicted and counted, the birth was not
