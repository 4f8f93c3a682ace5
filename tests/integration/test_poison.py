"""Poison on the real broker, ahead of a real outage: every forged or broken message is refused within its
batch, and the Rally Bar's power-off behind them still becomes down and a Critical ticket in the usual time;
the real agent's restart after a bogus boot is honoured."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.mosquitto import Mosquitto
from tests.support.mqtt import close_client
from tests.support.room import DETECTION_BUDGET, Room
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

PREFIX = "hezo/v1/test-site/room-1"


@pytest.fixture
def room(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[Room]:
    running = Room(mosquitto, tmp_path)
    running.start()
    try:
        running.wait_device_state("rally-bar", "up")
        yield running
    finally:
        running.stop()


#: A birth listing no devices: were it believed, every device of the agent would be retired.
EMPTY_BIRTH = {"state": "online", "version": "0.1.0", "will_seq": 0, "devices": []}


def down(since: str = "2026-11-24T21:00:00Z") -> dict[str, Any]:
    return {"device": "rally-bar", "state": "down", "since": since, "reason": "forged", "checks": []}


def envelope(**fields: Any) -> bytes:
    doc = {
        "v": 1,
        "site": "test-site",
        "agent": "room-1",
        "boot": "0199e0000000abcd",
        "seq": 1,
        "ts": "2026-11-24T21:00:00Z",
        "kind": "state",
        "body": down(),
    }
    doc.update(fields)
    return json.dumps(doc).encode()


def publish(broker: Mosquitto, messages: list[tuple[str, bytes, bool]]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        for topic, payload, retain in messages:
            client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)
    finally:
        close_client(client)


def test_poison_is_refused_at_once_and_a_real_outage_behind_it_is_ticketed(
    room: Room, mosquitto: Mosquitto
) -> None:
    state = f"{PREFIX}/device/rally-bar/state"
    agent = room.api("/api/agents")[0]
    publish(
        mosquitto,
        [
            (state, envelope(kind=[]), False),
            (state, envelope(kind={}), False),
            (state, envelope(ts="9999-12-31T23:59:59Z", body=down(since="0001-01-01T00:00:00Z")), False),
            (state, envelope(boot=agent["boot"], seq=2**62), False),
            (f"{PREFIX}/status", envelope(boot="zzzzzzzzzzzzzzzz", kind="birth", body=EMPTY_BIRTH), True),
        ],
    )
    refused = eventually("five refused", lambda: len(room.api("/api/rejected")) >= 5 or None, timeout=20)
    assert refused
    reasons = sorted((row["reason"], row["error"]) for row in room.api("/api/rejected"))
    assert [reason for reason, _ in reasons] == [
        "implausible",
        "implausible",
        "implausible",
        "malformed",
        "malformed",
    ], reasons
    assert room.device("rally-bar")["state"] == "up"  # type: ignore[index]

    room.power("rally-bar", on=False)
    [ticket] = eventually("a Critical ticket", lambda: room.tickets("rally-bar"), timeout=DETECTION_BUDGET)
    assert ticket["priority"] == "critical"
    assert "Traceback" not in room.log("collector")

    # The agent restarts for real: its new boot is taken, the bogus one never was.
    room.kill("agent")
    room.start_agent()
    eventually(
        "the agent's new boot taken",
        lambda: (found := room.api("/api/agents")[0])["boot"] != agent["boot"] and found["online"],
        timeout=30,
    )
