"""The collector against a real Mosquitto: messages from the wire become devices, tickets and rejects."""

import json
import signal
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select

from collector import tickets
from collector.config import CollectorConfig
from collector.service import CollectorService
from collector.store.schema import agents, devices, events, rejected
from tests.support.collector import FakeAgent, admin_token, get, serve
from tests.support.mosquitto import Mosquitto, free_port, wait_port
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


class Publisher:
    def __init__(self, broker: Mosquitto) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-agent", protocol=mqtt.MQTTv311)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def send(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def make_config(broker: Mosquitto, tmp_path: Path, receiver: str = "process") -> CollectorConfig:
    return CollectorConfig.model_validate(
        {
            "mqtt": {
                "host": broker.host,
                "port": broker.port,
                "client_id": "collector-under-test",
                "receiver": receiver,
            },
            "store": {"url": f"sqlite:///{tmp_path / 'collector.db'}"},
            "incidents": {"confirm_window": 0.5, "evaluate_every": 0.1},
        }
    )


@pytest.fixture
def publisher(mosquitto: Mosquitto) -> Iterator[Publisher]:
    publisher = Publisher(mosquitto)
    yield publisher
    publisher.close()


@pytest.fixture(params=["process", "thread"])
def service(
    mosquitto: Mosquitto, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[CollectorService]:
    """A collector with its MQTT session in a receiver process (the default), then in a thread."""
    service = CollectorService(make_config(mosquitto, tmp_path, request.param))
    service.start()
    assert service.subscriber.wait_subscribed(10)
    yield service
    service.stop()


def test_down_device_published_by_an_agent_gets_a_ticket(
    service: CollectorService, publisher: Publisher
) -> None:
    agent = FakeAgent()
    now = datetime.now(UTC)
    publisher.send(*agent.birth(at=now), retain=True)
    publisher.send(*agent.state("down", at=now), retain=True)

    def ticket() -> list[dict[str, Any]]:
        with service.engine.connect() as conn:
            return tickets.list_tickets(conn)

    [opened] = eventually("a ticket", ticket)
    assert (opened["device"], opened["serial"], opened["contract"]) == (
        "rally-bar-1",
        "2034FH1002R2",
        "HZ-2026-0042",
    )
    assert opened["priority"] == "critical"


def test_malformed_payload_is_kept_and_the_subscriber_keeps_going(
    service: CollectorService, publisher: Publisher
) -> None:
    agent = FakeAgent()
    publisher.send(agent.topics.event(agent.site, agent.agent), b'{"v": 1, "oops"')
    publisher.send(*agent.birth(at=datetime.now(UTC)))

    def online() -> bool:
        with service.engine.connect() as conn:
            return bool(conn.execute(select(agents.c.online)).scalar_one_or_none())

    eventually("the agent to come online after the bad message", online)
    with service.engine.connect() as conn:
        [row] = conn.execute(select(rejected)).all()
    assert row.topic == "hezo/v1/hq/room-101-pc/event"
    assert bytes(row.payload) == b'{"v": 1, "oops"'
    assert row.error.startswith("payload is not JSON")


def test_messages_sent_while_the_collector_is_down_arrive_after_restart(
    mosquitto: Mosquitto, tmp_path: Path, publisher: Publisher
) -> None:
    config = make_config(mosquitto, tmp_path)
    first = CollectorService(config)
    first.start()
    assert first.subscriber.wait_subscribed(10)
    first.stop()

    agent = FakeAgent()
    publisher.send(*agent.state("up", at=datetime.now(UTC)))  # not retained: only the session keeps it

    second = CollectorService(config)
    second.start()
    try:

        def device_state() -> str | None:
            with second.engine.connect() as conn:
                return conn.execute(select(devices.c.state)).scalar_one_or_none()

        assert eventually("the queued state", device_state) == "up"
    finally:
        second.stop()


def test_a_message_received_but_not_stored_survives_a_sigkill(
    mosquitto: Mosquitto, tmp_path: Path, publisher: Publisher
) -> None:
    port = free_port()
    database = tmp_path / "collector.db"
    config = tmp_path / "collector.yaml"
    config.write_text(
        f"mqtt: {{host: {mosquitto.host}, port: {mosquitto.port}, client_id: collector-{port}}}\n"
        f"store: {{url: 'sqlite:///{database}'}}\n"
        f"web: {{host: 127.0.0.1, port: {port}}}\n"
    )
    agent = FakeAgent()
    token = admin_token(f"sqlite:///{database}")
    first = serve(config, tmp_path)
    try:
        wait_port("127.0.0.1", port, timeout=30)
        publisher.send(*agent.birth(at=datetime.now(UTC)))
        eventually("the collector stores the birth", lambda: json.loads(get(port, "/api/agents", token)))

        # The database is busy: the collector receives the next message but cannot store it yet.
        lock = sqlite3.connect(database, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        try:
            publisher.send(
                *agent.state("down", at=datetime.now(UTC))
            )  # not retained: only the session has it
            eventually(
                "the collector holds the message",
                lambda: "hezo_ingest_queue_depth 1.0" in get(port, "/metrics"),
            )
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        finally:
            lock.execute("ROLLBACK")
            lock.close()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()

    second = serve(config, tmp_path)
    try:
        wait_port("127.0.0.1", port, timeout=30)
        eventually(
            "the state the killed collector had received but not stored",
            lambda: json.loads(get(port, "/api/devices", token))[0]["state"] == "down",
        )
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    assert second.returncode == 0


def ingested(service: CollectorService, kind: str) -> float:
    value = service.metrics.registry.get_sample_value("hezo_messages_ingested_total", {"kind": kind})
    return value or 0.0


def restart_broker(mosquitto: Mosquitto, service: CollectorService, publisher: Publisher) -> None:
    mosquitto.stop()
    eventually("the collector to see the broker gone", lambda: not service.subscriber.connected())
    mosquitto.start()
    assert service.subscriber.wait_subscribed(20)
    eventually("the publisher to reconnect", publisher.client.is_connected)


@contextmanager
def store_locked(tmp_path: Path) -> Iterator[None]:
    """The collector's SQLite store held by another writer: nothing can be stored or acknowledged."""
    lock = sqlite3.connect(tmp_path / "collector.db", isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        lock.execute("ROLLBACK")
        lock.close()


def restart_broker_holding(mosquitto: Mosquitto, service: CollectorService, publisher: Publisher) -> None:
    """Restart the broker once the collector holds a message it has not acknowledged."""
    eventually(
        "the collector holds unacknowledged messages",
        lambda: (service.metrics.registry.get_sample_value("hezo_ingest_queue_depth") or 0) >= 1,
    )
    restart_broker(mosquitto, service, publisher)


def test_messages_unacknowledged_across_a_broker_restart_are_each_stored_once(
    mosquitto: Mosquitto, tmp_path: Path, service: CollectorService, publisher: Publisher
) -> None:
    agent = FakeAgent()
    sent = 30
    # The database is busy: the collector receives the events but can neither store nor acknowledge them.
    with store_locked(tmp_path):
        for _ in range(sent):
            publisher.send(*agent.event(at=datetime.now(UTC)))  # not retained: only the session has them
        restart_broker_holding(mosquitto, service, publisher)

    def stored_seqs() -> list[int]:
        with service.engine.connect() as conn:
            return list(conn.execute(select(events.c.seq).order_by(events.c.seq)).scalars())

    eventually("every event stored", lambda: len(stored_seqs()) == sent, timeout=60)
    assert stored_seqs() == list(range(1, sent + 1))
    with service.engine.connect() as conn:
        assert conn.execute(select(rejected)).all() == []

    # Every one was acknowledged: a new collector on the same session gets nothing of them again.
    service.stop()
    second = CollectorService(make_config(mosquitto, tmp_path))
    second.start()
    try:
        assert second.subscriber.wait_subscribed(10)
        publisher.send(*agent.event(at=datetime.now(UTC)))
        eventually("the next event", lambda: ingested(second, "event") >= 1)
        assert ingested(second, "event") == 1
    finally:
        second.stop()


def test_a_bad_message_delivered_again_after_a_broker_restart_is_kept_once(
    mosquitto: Mosquitto, tmp_path: Path, service: CollectorService, publisher: Publisher
) -> None:
    agent = FakeAgent()
    # The database is busy: the collector receives the bad message but can neither keep nor acknowledge it,
    # so the broker delivers it again (DUP) after its restart, once the first copy has been kept.
    with store_locked(tmp_path):
        publisher.send(agent.topics.event(agent.site, agent.agent), b'{"v": 1, "oops"')
        restart_broker_holding(mosquitto, service, publisher)

    eventually(
        "the copy delivered again",
        lambda: service.metrics.registry.get_sample_value("hezo_messages_duplicate_total") == 1,
        timeout=60,
    )
    assert (
        service.metrics.registry.get_sample_value("hezo_messages_rejected_total", {"reason": "malformed"})
        == 1
    )
    with service.engine.connect() as conn:
        assert len(conn.execute(select(rejected)).all()) == 1


def test_a_reconnect_does_not_make_the_broker_send_retained_messages_again(
    mosquitto: Mosquitto, service: CollectorService, publisher: Publisher
) -> None:
    agent = FakeAgent()

    def events_stored() -> int:
        with service.engine.connect() as conn:
            return len(conn.execute(select(events.c.id)).all())

    publisher.send(*agent.birth(at=datetime.now(UTC)), retain=True)
    publisher.send(agent.topics.event(agent.site, agent.agent), b'{"v": 1, "oops"', retain=True)
    # One more round trip, so that the broker has the acks of both before it stops (else it would rightly
    # deliver them again: QoS 1 is at least once).
    publisher.send(*agent.event(at=datetime.now(UTC)))
    eventually("the messages before the restart", lambda: events_stored() == 1)

    restart_broker(mosquitto, service, publisher)
    publisher.send(*agent.event(at=datetime.now(UTC)))
    eventually("the event sent after the reconnect", lambda: events_stored() == 2)

    assert ingested(service, "birth") == 1
    with service.engine.connect() as conn:
        assert len(conn.execute(select(rejected)).all()) == 1
