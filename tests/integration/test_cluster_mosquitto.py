"""Leases without NATS (``cluster.enabled`` on the default Mosquitto backbone): two collectors on one
PostgreSQL, each with its own MQTT session, both store what agents send (once: the message identities), and
each site's ticket is opened by the one collector owning it; when one stops, the other takes its sites."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, func, select

from collector.cluster.partitions import partition_of
from collector.config import CollectorConfig
from collector.service import CollectorService
from collector.store.database import make_engine
from collector.store.schema import messages, tickets
from tests.integration.test_cluster import store_url
from tests.support.collector import FakeAgent
from tests.support.mosquitto import Mosquitto
from tests.support.postgres import postgres_schema
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

PARTITIONS = 2


@pytest.fixture
def store() -> Iterator[Engine]:
    with postgres_schema() as engine:
        yield engine


def collector(broker: Mosquitto, url: str, name: str) -> CollectorService:
    config = CollectorConfig.model_validate(
        {
            "mqtt": {"host": broker.host, "port": broker.port, "client_id": name},
            "store": {"url": url},
            "ingest": {"boot_ids": "any"},
            "incidents": {"confirm_window": 0.5, "evaluate_every": 0.1},
            "cluster": {"enabled": True, "node": name, "partitions": PARTITIONS, "lease_seconds": 2},
        }
    )
    return CollectorService(config, engine=make_engine(url))


def opened(service: CollectorService) -> float:
    value = service.metrics.registry.get_sample_value("hezo_tickets_opened_total", {"priority": "critical"})
    return value or 0.0


def test_two_collectors_on_mosquitto_open_each_sites_ticket_once(mosquitto: Mosquitto, store: Engine) -> None:
    url = store_url(store)
    first, second = collector(mosquitto, url, "alpha"), collector(mosquitto, url, "beta")
    first.start()
    second.start()
    stopped: list[CollectorService] = []
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="agents", protocol=mqtt.MQTTv311)
    try:
        assert first.subscriber.wait_subscribed(10)
        assert second.subscriber.wait_subscribed(10)
        assert first.ownership is not None
        assert second.ownership is not None
        eventually(
            "each collector holds one partition",
            lambda: len(first.ownership.owned()) == 1 and len(second.ownership.owned()) == 1,  # type: ignore[union-attr]
        )
        sites = [
            next(f"site-{n}" for n in range(50) if partition_of(f"site-{n}", PARTITIONS) == p) for p in (0, 1)
        ]
        publisher.connect(mosquitto.host, mosquitto.port)
        publisher.loop_start()
        now = datetime.now(UTC)
        for site in sites:
            agent = FakeAgent(site=site, agent=f"{site}-pc")
            for message in (agent.birth(at=now), agent.state("down", at=now)):
                publisher.publish(*message, qos=1).wait_for_publish(10)

        def ticket_sites() -> list[str] | None:
            with store.connect() as conn:
                found = sorted(conn.execute(select(tickets.c.site)).scalars())
            return found if len(found) >= len(sites) else None

        assert eventually("a ticket at each site", ticket_sites) == sorted(sites)
        with store.connect() as conn:
            assert conn.execute(select(func.count()).select_from(messages)).scalar_one() == 2 * len(sites)
        # Each collector opened the ticket of its own site, and only that one.
        assert opened(first) == 1
        assert opened(second) == 1

        second.stop()  # a clean stop hands its partition over at once
        stopped.append(second)
        eventually("alpha holds both partitions", lambda: len(first.ownership.owned()) == PARTITIONS)  # type: ignore[union-attr]
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        for service in (first, second):
            if service not in stopped:
                service.stop()
