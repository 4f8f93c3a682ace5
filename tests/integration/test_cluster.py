"""Past one node: a 3-node NATS JetStream cluster on loopback and two collectors on one PostgreSQL.

Agents publish MQTT through the cluster; one NATS node and one collector are killed (SIGKILL) mid-stream.
Every message is stored exactly once, no seq gap is seen that was not real, no ticket is opened twice, the
surviving collector takes over the dead one's partitions within a bound it prints, and recovers every
ticket once, the dead one's sites' included.
"""

from __future__ import annotations

import asyncio
import functools
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import SecretStr
from sqlalchemy import Engine, func, select, text

from collector.cluster.leases import MEMBER, PARTITION
from collector.cluster.partitions import partition_of
from collector.cluster.settings import NatsConfig
from collector.ingest.jetstream import JetStreamReceiver
from collector.ingest.natsconnect import open_mqtt_once
from collector.ingest.session import SessionSettings
from collector.ingest.writer import Message
from collector.store.database import utcnow
from collector.store.schema import (
    agent_boots,
    leases,
    messages,
    rejected,
    samples,
    ticket_entries,
    tickets,
)
from common.configfile import TlsConfig
from tests.support.collector import FakeAgent, boot_id, serve
from tests.support.mosquitto import free_port
from tests.support.nats import NatsCluster
from tests.support.postgres import URL, postgres_schema
from tests.support.tlscert import make_cert
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

PARTITIONS = 4
LEASE_SECONDS = 3.0
#: The takeover bound: the lease time, a renewal round (a third of it), and room for the slow machine.
TAKEOVER_BOUND = LEASE_SECONDS + LEASE_SECONDS / 3 + 6.0
SITES = [f"site-{n}" for n in range(8)]
ROUNDS = 30  # telemetry messages per agent


class Agent:
    """One fake agent on its own MQTT connection to one NATS node, QoS 1."""

    def __init__(self, site: str, port: int) -> None:
        self.fake = FakeAgent(site=site, agent=f"{site}-pc", boot=boot_id(1))
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"agent-{site}",
            protocol=mqtt.MQTTv311,
            clean_session=False,
        )
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.sent = 0
        self.samples = 0

    def send(self, message: tuple[str, bytes], samples: int = 0) -> None:
        """Publish, as the agent's link does: while its node is away, wait for the reconnect and try again."""
        deadline = time.monotonic() + 60
        while (info := self.client.publish(*message, qos=1)).rc == mqtt.MQTT_ERR_NO_CONN:
            assert time.monotonic() < deadline, f"agent {self.fake.agent} could not reconnect"
            time.sleep(0.1)
        info.wait_for_publish(60)
        self.sent += 1
        self.samples += samples

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    with NatsCluster(tmp_path / "nats", size=3, partitions=PARTITIONS) as nodes:
        yield nodes


@pytest.fixture
def store() -> Iterator[Engine]:
    with postgres_schema() as engine:
        yield engine


def store_url(engine: Engine) -> str:
    with engine.connect() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
    return f"{URL}?options={quote(f'-csearch_path={schema}')}"


def start_collector(name: str, cluster: NatsCluster, url: str, root: Path) -> subprocess.Popen[bytes]:
    config = collector_config(name, cluster, url, root)
    return serve(config, config.parent)


def collector_config(name: str, cluster: NatsCluster, url: str, root: Path) -> Path:
    """The config file of collector ``name`` in its own directory under ``root``."""
    workdir = root / name
    workdir.mkdir()
    servers = ", ".join(f"'{server}'" for server in reversed(cluster.servers))
    config = workdir / "collector.yaml"
    config.write_text(
        f"mqtt: {{host: 127.0.0.1, port: {cluster.nodes[0].mqtt_port}, client_id: {name}}}\n"
        f"store: {{url: '{url}'}}\n"
        f"web: {{host: 127.0.0.1, port: {free_port()}}}\n"
        "ingest: {boot_ids: any}\n"
        "incidents: {confirm_window: 1, evaluate_every: 0.2}\n"
        f"cluster: {{enabled: true, node: {name}, partitions: {PARTITIONS}, lease_seconds: {LEASE_SECONDS},"
        f" backbone: jetstream, nats: {{servers: [{servers}]}}}}\n"
    )
    return config


def holders(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(leases.c.name, leases.c.holder).where(leases.c.expires_at > func.clock_timestamp())
        )
        return {row.name: row.holder for row in rows}


def partitions_of(engine: Engine, node: str) -> set[str]:
    return {
        name
        for name, holder in holders(engine).items()
        if name.startswith(PARTITION) and holder.startswith(f"{node}-")
    }


def consumers(cluster: NatsCluster) -> list[str]:
    async def names() -> list[str]:
        import nats

        client = await nats.connect(servers=cluster.servers)
        try:
            return [info.name for info in await client.jetstream().consumers_info("$MQTT_msgs")]
        finally:
            await client.close()

    return asyncio.run(names())


def waiting_for_ack(cluster: NatsCluster, prefix: str) -> int:
    """Messages the consumers named ``prefix...`` delivered and have no ack for."""

    async def pending() -> int:
        import nats

        client = await nats.connect(servers=cluster.servers)
        try:
            infos = await client.jetstream().consumers_info("$MQTT_msgs")
            return sum(info.num_ack_pending for info in infos if info.name.startswith(prefix))
        finally:
            await client.close()

    return asyncio.run(pending())


def count(engine: Engine, table: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def recovered(store: Engine) -> int:
    with store.connect() as conn:
        query = select(func.count()).select_from(tickets).where(tickets.c.status == "recovered")
        return int(conn.execute(query).scalar_one())


def test_two_collectors_on_a_nats_cluster_survive_a_node_and_a_collector_dying(
    cluster: NatsCluster, store: Engine, tmp_path: Path
) -> None:
    url = store_url(store)
    # No MQTT client has connected yet, so NATS has no MQTT streams: the collectors have it make them.
    first = start_collector("alpha", cluster, url, tmp_path)
    second = start_collector("beta", cluster, url, tmp_path)
    agents: list[Agent] = []
    try:
        eventually(
            "both collectors hold partitions, every partition has a consumer",
            lambda: (
                partitions_of(store, "alpha")
                and partitions_of(store, "beta")
                and len(partitions_of(store, "alpha") | partitions_of(store, "beta")) == PARTITIONS
                and all(
                    any(name.startswith(f"hezo-collector-p{n}-g") for name in consumers(cluster))
                    for n in range(PARTITIONS)
                )
            ),
            timeout=60,
        )
        beta_sites = [
            s for s in SITES if f"{PARTITION}{partition_of(s, PARTITIONS)}" in partitions_of(store, "beta")
        ]
        assert beta_sites, "the sites chosen all fall in alpha's partitions"
        # Agents on the first two nodes; the third is the one that dies.
        agents = [Agent(site, cluster.nodes[index % 2].mqtt_port) for index, site in enumerate(SITES)]
        now = datetime.now(UTC)
        for agent in agents:
            agent.send(agent.fake.birth(at=now))
            agent.send(agent.fake.state("down", at=now))  # a device down at every site: one ticket each
        for round_ in range(ROUNDS):
            if round_ == ROUNDS // 3:
                cluster.kill(cluster.nodes[2])
            if round_ == ROUNDS // 2:
                second.send_signal(signal.SIGKILL)
                second.wait(10)
                killed_at = time.monotonic()
            for agent in agents:
                agent.send(agent.fake.telemetry(at=datetime.now(UTC)), samples=2)

        def taken_over() -> float | None:
            if len(partitions_of(store, "alpha")) == PARTITIONS:
                return time.monotonic() - killed_at
            return None

        took = eventually("alpha holds every partition", taken_over, timeout=60, every=0.05)
        print(
            f"\ntakeover: alpha held every partition {took:.2f} s after beta was killed "
            f"(lease {LEASE_SECONDS:.0f} s, bound {TAKEOVER_BOUND:.1f} s)"
        )
        assert took <= TAKEOVER_BOUND

        sent = sum(agent.sent for agent in agents)
        eventually(f"all {sent} messages stored", lambda: count(store, messages) >= sent, timeout=120)
        eventually(
            "a device-down ticket at every site",
            lambda: count(store, tickets) >= len(SITES),
            timeout=60,
        )
        with store.connect() as conn:
            assert count(store, messages) == sent  # once each: the key holds them, the samples tell
            assert count(store, samples) == sum(agent.samples for agent in agents)
            assert count(store, rejected) == 0
            gaps = conn.execute(select(agent_boots.c.site, agent_boots.c.gaps, agent_boots.c.missing)).all()
            assert [row for row in gaps if row.gaps or row.missing] == []
            assert {row.site for row in gaps} == set(SITES)
            opened = conn.execute(
                select(tickets.c.site, tickets.c.cause, func.count()).group_by(
                    tickets.c.site, tickets.c.cause
                )
            ).all()
        assert sorted((row.site, row.cause) for row in opened) == sorted((s, "device-down") for s in SITES)
        assert all(row[2] == 1 for row in opened)
        assert MEMBER + "beta" not in {name.rsplit("-", 1)[0] for name in holders(store)}
        # The devices come back: alpha, holding beta's sites now, recovers every ticket, each once.
        for agent in agents:
            agent.send(agent.fake.state("up", at=datetime.now(UTC)))
        eventually("every ticket recovered", lambda: recovered(store) == len(SITES), timeout=60)
        with store.connect() as conn:
            entries = conn.execute(
                select(ticket_entries.c.ticket_id, func.count())
                .where(ticket_entries.c.kind == "recovered")
                .group_by(ticket_entries.c.ticket_id)
            ).all()
        assert len(entries) == len(SITES)
        assert all(row[1] == 1 for row in entries)
    finally:
        for agent in agents:
            agent.close()
        for process in (first, second):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


class Queue:
    """The writer's queue as the receiver sees it: what it was handed, in order."""

    def __init__(self) -> None:
        self.items: list[Message] = []

    def put(self, item: Message) -> None:
        self.items.append(item)


class AllPartitions:
    """A collector holding every partition, at generation 1."""

    partitions = 2

    def owned(self) -> frozenset[int]:
        return frozenset({0, 1})

    def generation(self, number: int) -> int | None:
        return 1


def test_the_receiver_waits_for_nats_has_it_make_its_streams_and_hands_on_what_agents_send(
    tmp_path: Path,
) -> None:
    nats = NatsCluster(tmp_path / "nats", size=1, partitions=2)
    node = nats.nodes[0]
    queue = Queue()
    mqtt_settings = SessionSettings("127.0.0.1", node.mqtt_port, "collector-test", "hezo/v1", 30)
    receiver = JetStreamReceiver(
        NatsConfig(servers=nats.servers),
        "hezo/v1",
        queue,
        AllPartitions(),
        now=utcnow,
        make_streams=functools.partial(open_mqtt_once, mqtt_settings),
    )
    receiver.start()  # before NATS runs: it tries again until it can connect
    try:
        nats.start()
        assert receiver.wait_subscribed(90), "the receiver never had its consumers in place"
        agent = Agent("hq", node.mqtt_port)
        try:
            agent.send(agent.fake.birth(at=datetime.now(UTC)))
        finally:
            agent.close()
        [message] = eventually("the birth handed to the writer", lambda: queue.items[:1])
        assert message.topic == "hezo/v1/hq/hq-pc/status"
        name = f"hezo-collector-p{partition_of('hq', 2)}-g1-"
        assert waiting_for_ack(nats, name) == 1  # not acknowledged before the writer says it is stored
        assert message.ack is not None
        message.ack()
        receiver.flush_acks()
        eventually("the ack sent to NATS", lambda: waiting_for_ack(nats, name) == 0)
    finally:
        receiver.stop()
        nats.stop()


def test_the_receiver_reaches_nats_over_tls_with_its_own_login(tmp_path: Path) -> None:
    cert = make_cert(tmp_path, valid_from=timedelta(days=-1), valid_until=timedelta(days=1), name="nats")
    secret = "s3cret-for-this-test"
    nats = NatsCluster(
        tmp_path / "nats",
        size=1,
        partitions=2,
        extra=f'tls {{ cert_file: "{cert.cert}", key_file: "{cert.key}" }}\n'
        f"authorization {{ user: hezo-collector, password: {secret} }}\n",
    )
    node = nats.nodes[0]
    login = SessionSettings(
        "127.0.0.1", node.mqtt_port, "collector-tls", "hezo/v1", 30, "hezo-collector", secret
    )
    receiver = JetStreamReceiver(
        NatsConfig(
            servers=[f"tls://127.0.0.1:{node.client_port}"],
            user="hezo-collector",
            password=SecretStr(secret),
            tls=TlsConfig(ca_file=cert.cert),
        ),
        "hezo/v1",
        Queue(),
        AllPartitions(),
        now=utcnow,
        make_streams=functools.partial(open_mqtt_once, login),
    )
    with nats:
        receiver.start()
        try:
            assert receiver.wait_subscribed(60), "the receiver did not get through TLS and the login"
            assert receiver.connected()
        finally:
            receiver.stop()
