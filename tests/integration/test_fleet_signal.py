"""``hezo-sim fleet`` on a real Mosquitto: with no ``--die-after``, its devices die when its process gets
SIGUSR1 (every process of the fleet, once), and a device that died says so in its retained state."""

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.mosquitto import ROOT, Mosquitto
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


def test_sigusr1_makes_the_dying_share_die_in_every_process(tmp_path: Path, mosquitto: Mosquitto) -> None:
    command = [sys.executable, "-m", "simulator", "fleet", "--host", mosquitto.host, "--port"]
    command += [str(mosquitto.port), "--agents", "4", "--processes", "2", "--dying", "0.5"]
    command += ["--flapping", "0", "--seed", "3"]
    fleet = subprocess.Popen(command, stdout=subprocess.PIPE, cwd=ROOT)
    lines: list[dict[str, object]] = []

    def read() -> None:
        assert fleet.stdout is not None
        for line in fleet.stdout:
            lines.append(json.loads(line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def said(event: str) -> list[dict[str, object]]:
        return [line for line in lines if line["event"] == event]

    try:
        eventually("both processes connected", lambda: len(said("connected")) == 2, timeout=30)
        assert said("died") == []  # no --die-after: nothing dies by itself
        fleet.send_signal(signal.SIGUSR1)
        died = eventually("both processes' devices died", lambda: len(said("died")) == 2 and said("died"))
        dead = sum(int(line["devices"]) for line in died)  # type: ignore[call-overload]
        assert dead > 0
        # The states go out after the line is printed: the broker holds them a moment later.
        eventually(
            f"{dead} retained states down",
            lambda: len(down_states(mosquitto)) == dead,
            every=0.5,
        )
    finally:
        fleet.terminate()
        fleet.wait(timeout=30)
        reader.join(10)
        assert fleet.stdout is not None
        fleet.stdout.close()


def down_states(broker: Mosquitto) -> set[str]:
    """The retained device states that say ``down``, by topic."""
    down: set[str] = set()
    seen = threading.Event()

    def on_message(_client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        if json.loads(message.payload)["body"]["state"] == "down":
            down.add(message.topic)

    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.on_message = on_message
    client.on_subscribe = lambda *_: seen.set()
    client.connect(broker.host, broker.port)
    client.subscribe("hezo/v1/+/+/device/+/state", qos=1)
    client.loop_start()
    try:
        assert seen.wait(10)
        # Retained messages come right after the subscription's acknowledgement; a ping after them marks
        # the end (the broker answers in order).
        done = threading.Event()
        client.on_publish = lambda *_: done.set()
        client.publish("fleet-test/ping", b"", qos=1).wait_for_publish(10)
        assert done.wait(10)
    finally:
        client.loop_stop()
        client.disconnect()
    return down
