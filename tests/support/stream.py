"""A stream of valid envelopes published fast, and persistent sessions that queue it: for fault tests and the
ingest benchmark. Every message has its own identity ``(agent, boot, seq)``, so a consumer can count each."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterable, Iterator

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from protocol import Envelope, Topics, encode
from tests.support.mqtt import close_client

PREFIX = "hezo/v1"
SITE = "bench"
BOOT = "0190000000000000"
TS = "2026-11-24T21:00:00.000Z"


def agent_name(index: int) -> str:
    return f"agent-{index:03d}"


def telemetry_stream(count: int, agents: int = 20, samples: int = 5) -> Iterator[tuple[str, bytes]]:
    """``count`` telemetry messages spread over ``agents`` agents, seq 1, 2, ... per agent, in order."""
    topics = Topics(PREFIX)
    names = [agent_name(i) for i in range(agents)]
    body = {
        "samples": [
            {"device": "rally-bar-1", "metric": f"m{i}", "value": 12.5 + i, "ts": TS} for i in range(samples)
        ]
    }
    for number in range(count):
        agent = names[number % agents]
        seq = number // agents + 1
        envelope = Envelope(SITE, agent, BOOT, seq, TS, "telemetry", body)
        yield topics.telemetry(SITE, agent), encode(envelope)


def persist_session(host: str, port: int, client_id: str, topic: str = f"{PREFIX}/#") -> None:
    """Create a persistent session subscribed to ``topic`` and leave: the broker queues for it from now on."""
    done = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    client.on_subscribe = lambda *_: done.set()
    client.connect(host, port)
    client.loop_start()
    try:
        if not done.wait(10):
            raise TimeoutError(f"{client_id} could not subscribe")
    finally:
        close_client(client)


def publish_all(host: str, port: int, messages: Iterable[tuple[str, bytes]]) -> int:
    """Publish QoS 1 with ``mosquitto_pub -l`` (one per topic; some 20,000 messages/s), return the count once
    the broker has taken them all. Payloads must be single-line (an encoded envelope is)."""
    by_topic: dict[str, list[bytes]] = {}
    for topic, payload in messages:
        by_topic.setdefault(topic, []).append(payload)
    binary = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
    for topic, payloads in by_topic.items():
        subprocess.run(
            [binary, "-h", host, "-p", str(port), "-q", "1", "-t", topic, "-l"],
            input=b"\n".join(payloads) + b"\n",
            check=True,
            timeout=300,
        )
    return sum(len(p) for p in by_topic.values())
