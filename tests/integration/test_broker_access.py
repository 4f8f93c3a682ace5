"""Who may do what at the production broker: the shipped config/mosquitto.production.conf on loopback, with
logins made by ``hezo-collector agents enrol`` and an attacker's clients trying what they should not."""

from pathlib import Path

import pytest
from sqlalchemy import select

from collector.config import load_config
from collector.service import CollectorService
from collector.store.schema import agents, devices, rejected
from protocol import Topics
from tests.support.collector import FakeAgent
from tests.support.securebroker import (
    COLLECTOR_LOGIN,
    BrokerClient,
    SecureBroker,
    collector_config,
    enrol,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

SITE = "acme"
TOPICS = Topics()


@pytest.fixture
def broker(secure_broker: SecureBroker) -> SecureBroker:
    return secure_broker


@pytest.fixture
def clients(broker_clients: list[BrokerClient]) -> list[BrokerClient]:
    return broker_clients


def test_anonymous_clients_and_wrong_passwords_are_refused(
    broker: SecureBroker, clients: list[BrokerClient]
) -> None:
    anonymous = BrokerClient(broker, "anonymous")
    clients.append(anonymous)
    guessing = BrokerClient(broker, "guess", username=COLLECTOR_LOGIN, password="not-the-password")
    clients.append(guessing)
    assert str(anonymous.reason) == "Not authorized"
    assert str(guessing.reason) == "Not authorized"


def test_the_broker_speaks_only_tls(broker: SecureBroker, clients: list[BrokerClient]) -> None:
    plain = BrokerClient(broker, "plain", username=COLLECTOR_LOGIN, password=broker.password, tls=False)
    clients.append(plain)
    assert plain.lost.is_set()
    assert plain.reason is None  # closed without a CONNACK: a plain MQTT CONNECT is not a TLS hello


def test_an_agent_login_works_only_with_its_own_client_id(
    broker: SecureBroker, tmp_path: Path, clients: list[BrokerClient]
) -> None:
    document = enrol(tmp_path, collector_config(tmp_path, broker), f"{SITE}/room-a")
    # With the collector's client id it could throw the collector's session out, and take it over.
    impostor = BrokerClient(broker, "hezo-collector", username=document.username, password=document.password)
    clients.append(impostor)
    itself = BrokerClient.of(broker, document)
    clients.append(itself)
    assert str(impostor.reason) == "Not authorized"
    assert itself.accepted


def test_an_agent_publishing_under_another_agents_topics_is_dropped_before_the_collector(
    broker: SecureBroker, tmp_path: Path, clients: list[BrokerClient]
) -> None:
    config = collector_config(tmp_path, broker)
    room_a = enrol(tmp_path, config, f"{SITE}/room-a")
    enrol(tmp_path, config, f"{SITE}/room-b")
    service = CollectorService(load_config(config))
    service.start()
    try:
        assert service.subscriber.wait_subscribed(15)
        attacker = BrokerClient.of(broker, room_a)
        clients.append(attacker)
        victim = FakeAgent(site=SITE, agent="room-b")
        attacker.publish(*victim.birth(), retain=True)
        attacker.publish(*victim.state("down"), retain=True)  # would be a Critical ticket for room-b
        attacker.publish(*FakeAgent(site="other-site", agent="room-a").birth(), retain=True)
        own = FakeAgent(site=SITE, agent="room-a", devices=[])
        attacker.publish(*own.birth(), retain=True)

        def stored() -> list[tuple[str, str]]:
            with service.engine.connect() as conn:
                return [(row.site, row.agent) for row in conn.execute(select(agents.c.site, agents.c.agent))]

        # One connection's messages arrive in order: once its own birth is stored, any forgery before it
        # would have been too.
        eventually("room-a's own birth stored", lambda: (SITE, "room-a") in stored(), timeout=20)
        assert stored() == [(SITE, "room-a")]
        with service.engine.connect() as conn:
            assert conn.execute(select(devices)).all() == []
            assert conn.execute(select(rejected)).all() == []  # never even reached the collector
    finally:
        service.stop()


def test_only_the_collector_publishes_commands(
    broker: SecureBroker, tmp_path: Path, clients: list[BrokerClient]
) -> None:
    config = collector_config(tmp_path, broker)
    room_a = enrol(tmp_path, config, f"{SITE}/room-a")
    room_b = enrol(tmp_path, config, f"{SITE}/room-b")
    victim = BrokerClient.of(broker, room_b)
    attacker = BrokerClient.of(broker, room_a)
    collector = BrokerClient(broker, "collector-probe", username=COLLECTOR_LOGIN, password=broker.password)
    clients.extend([victim, attacker, collector])
    cmd = TOPICS.cmd(SITE, "room-b")
    assert victim.subscribe(cmd)
    attacker.publish(cmd, b'{"forged": true}')
    attacker.publish(TOPICS.cmd(SITE, "room-a"), b'{"forged": true}')  # not even on its own
    # The broker routes a message before it acknowledges it, and one subscriber's queue keeps its order: had
    # the forgery been taken, it would arrive before this.
    collector.publish(cmd, b'{"from": "collector"}')
    victim.wait_message(cmd)
    assert victim.messages == [(cmd, b'{"from": "collector"}')]


def test_no_one_but_its_agent_reads_a_cmd_topic(
    broker: SecureBroker, tmp_path: Path, clients: list[BrokerClient]
) -> None:
    config = collector_config(tmp_path, broker)
    room_a = enrol(tmp_path, config, f"{SITE}/room-a")
    room_b = enrol(tmp_path, config, f"{SITE}/room-b")
    snoop = BrokerClient.of(broker, room_a)
    victim = BrokerClient.of(broker, room_b)
    collector = BrokerClient(broker, "collector-probe", username=COLLECTOR_LOGIN, password=broker.password)
    clients.extend([snoop, victim, collector])
    cmd = TOPICS.cmd(SITE, "room-b")
    for topic in (cmd, "hezo/v1/+/+/cmd", f"hezo/v1/{SITE}/#", "#", "$CONTROL/dynamic-security/v1/response"):
        assert not snoop.subscribe(topic), topic
    # The collector sends commands; it has no reason to read them back, so it may not either.
    for topic in (cmd, "hezo/v1/+/+/cmd"):
        assert not collector.subscribe(topic), topic
    assert snoop.subscribe(TOPICS.cmd(SITE, "room-a"))
    assert victim.subscribe(cmd)
    secret = b'{"command": {"args": {"upload_token": "t0k3n-only-for-room-b"}}}'
    collector.publish(cmd, secret)
    collector.publish(TOPICS.cmd(SITE, "room-a"), b'{"command": {}}')
    assert victim.wait_message(cmd) == secret
    snoop.wait_message(TOPICS.cmd(SITE, "room-a"))
    assert [topic for topic, _ in snoop.messages] == [TOPICS.cmd(SITE, "room-a")]
    assert [topic for topic, _ in collector.messages] == []


def test_an_agent_reads_nothing_another_agent_publishes(
    broker: SecureBroker, tmp_path: Path, clients: list[BrokerClient]
) -> None:
    config = collector_config(tmp_path, broker)
    room_a = enrol(tmp_path, config, f"{SITE}/room-a")
    snoop = BrokerClient.of(broker, room_a)
    clients.append(snoop)
    for topic in TOPICS.collector_filters():
        assert not snoop.subscribe(topic), topic
