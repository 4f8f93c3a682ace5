"""Agents publishing through NATS before any collector runs: ``hezo-collector cluster nats-setup`` made the
consumers first, so NATS kept every message, and a collector started later stores each exactly once.

(Without the consumers NATS drops them: its ``$MQTT_msgs`` stream has interest retention.) And a collector
configured for another number of partitions than the consumers on NATS were made for does not start.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from collector.store.schema import agent_boots, messages, rejected, samples
from tests.integration.test_cluster import (
    PARTITIONS,
    Agent,
    collector_config,
    consumers,
    count,
    store_url,
)
from tests.support.collector import run_cli, serve
from tests.support.nats import NatsCluster
from tests.support.postgres import postgres_schema
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

SITES = [f"late-{n}" for n in range(4)]
ROUNDS = 10


@pytest.fixture
def store() -> Iterator[Engine]:
    with postgres_schema() as engine:
        yield engine


def kept(nats: NatsCluster) -> int:
    """Messages the ``$MQTT_msgs`` stream holds now."""

    async def messages_in_stream() -> int:
        import nats as client

        connection = await client.connect(servers=nats.servers)
        try:
            return int((await connection.jetstream().stream_info("$MQTT_msgs")).state.messages)
        finally:
            await connection.close()

    return asyncio.run(messages_in_stream())


def test_a_collector_started_after_agents_published_stores_every_message_once(
    tmp_path: Path, store: Engine
) -> None:
    began = time.monotonic()
    with NatsCluster(tmp_path / "nats", size=1, partitions=PARTITIONS) as nats:
        config = collector_config("alpha", nats, store_url(store), tmp_path)
        setup = run_cli(tmp_path, "--config", str(config), "cluster", "nats-setup")
        assert setup.returncode == 0, setup.stderr
        names = consumers(nats)
        assert sorted(names) == sorted(f"hezo-collector-p{n}-g0" for n in range(PARTITIONS))

        agents = [Agent(site, nats.nodes[0].mqtt_port) for site in SITES]
        try:
            for agent in agents:
                agent.send(agent.fake.birth(at=datetime.now(UTC)))
            for _ in range(ROUNDS):
                for agent in agents:
                    agent.send(agent.fake.telemetry(at=datetime.now(UTC)), samples=2)
        finally:
            for agent in agents:
                agent.close()
        sent = sum(agent.sent for agent in agents)
        assert kept(nats) == sent  # NATS kept them all for the consumers nats-setup made

        collector = serve(config, config.parent)
        try:
            eventually(f"all {sent} messages stored", lambda: count(store, messages) >= sent, timeout=90)
            eventually("every message acknowledged", lambda: kept(nats) == 0, timeout=30)
        finally:
            collector.send_signal(signal.SIGTERM)
            try:
                collector.wait(30)
            except subprocess.TimeoutExpired:
                collector.kill()
                collector.wait()
    assert count(store, messages) == sent
    assert count(store, samples) == sum(agent.samples for agent in agents)
    assert count(store, rejected) == 0
    with store.connect() as conn:
        boots = conn.execute(select(agent_boots.c.site, agent_boots.c.gaps, agent_boots.c.missing)).all()
    assert {row.site for row in boots} == set(SITES)
    assert [row for row in boots if row.gaps or row.missing] == []
    print(f"\nlate start: {sent} messages stored once, {time.monotonic() - began:.1f} s in all")


def test_a_collector_configured_for_another_partition_count_refuses_to_start(tmp_path: Path) -> None:
    with NatsCluster(tmp_path / "nats", size=1, partitions=PARTITIONS) as nats:
        url = f"sqlite:///{tmp_path / 'collector.db'}"
        config = collector_config("alpha", nats, url, tmp_path)
        setup = run_cli(tmp_path, "--config", str(config), "cluster", "nats-setup")
        assert setup.returncode == 0, setup.stderr
        other = collector_config("beta", nats, url, tmp_path)
        other.write_text(other.read_text().replace(f"partitions: {PARTITIONS},", "partitions: 2,"))

        for command in (["cluster", "nats-setup"], ["serve"]):
            done = run_cli(tmp_path, "--config", str(other), *command)
            assert done.returncode == 3, done.stderr
            assert "cluster.partitions is 2" in done.stderr
            assert f"was made for {PARTITIONS} partitions" in done.stderr
        assert len(consumers(nats)) == PARTITIONS  # none made for the other count
