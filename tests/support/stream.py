"""A stream of valid envelopes published fast, and persistent sessions that queue it: for fault tests and the
ingest benchmark. Every message has its own identity ``(agent, boot, seq)``, so a consumer can count each."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from protocol import Envelope, Topics, encode, format_ts
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


def fleet_stream(count: int, agents: int = 1000, devices: int = 10) -> Iterator[tuple[str, bytes]]:
    """``count`` messages as a fleet sends them after connecting: each agent's birth with ``devices``
    devices, then each device's state, then telemetry (one device's samples per message, ``ts`` advancing
    1 ms a message), the agents taking turns; seq 2, 3, ... per agent (seq 1 is the birth's will)."""
    topics = Topics(PREFIX)
    names = [agent_name(i) for i in range(agents)]
    seqs = dict.fromkeys(names, 1)
    start = datetime.now(UTC)
    made = 0

    def envelope(agent: str, kind: str, body: dict[str, Any]) -> bytes:
        nonlocal made
        seqs[agent] += 1
        made += 1
        ts = format_ts(start + timedelta(milliseconds=made))
        return encode(Envelope(SITE, agent, BOOT, seqs[agent], ts, kind, body))

    inventory = [{"id": f"dev-{d:03d}", "model": "rally-bar", "serial": f"S{d:05d}"} for d in range(devices)]
    for agent in names:
        if made >= count:
            return
        birth = {
            "state": "online",
            "version": "bench",
            "hostname": agent,
            "will_seq": 1,
            "devices": inventory,
        }
        yield topics.status(SITE, agent), envelope(agent, "birth", birth)
        for device in inventory:
            if made >= count:
                return
            now = format_ts(start)
            state = {"device": device["id"], "state": "up", "since": now, "reason": "ok", "checks": []}
            yield topics.state(SITE, agent, device["id"]), envelope(agent, "state", state)
    turn = 0
    while made < count:
        agent = names[turn % agents]
        device_id = inventory[(turn // agents) % devices]["id"]
        now = format_ts(start + timedelta(milliseconds=made))
        samples = [{"device": device_id, "metric": f"m{i}", "value": 12.5 + i, "ts": now} for i in range(2)]
        yield topics.telemetry(SITE, agent), envelope(agent, "telemetry", {"samples": samples})
        turn += 1


def publish_in_order(host: str, port: int, messages: Iterable[tuple[str, bytes]]) -> int:
    """Publish QoS 1 through one paho client, in the order given (each agent's birth before its states and
    telemetry), and return the count once the broker has acknowledged them all."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-publisher-{port}")
    client.max_inflight_messages_set(1000)
    client.connect(host, port)
    client.loop_start()
    sent = []
    try:
        for topic, payload in messages:
            sent.append(client.publish(topic, payload, qos=1))
        for info in sent:
            info.wait_for_publish(timeout=300)
            if not info.is_published():
                raise TimeoutError(f"the broker did not acknowledge message {info.mid}")
    finally:
        close_client(client)
    return len(sent)


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
