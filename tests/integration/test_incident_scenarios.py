"""Incident scenarios through a real Mosquitto: fake agents publish real envelopes (births with their MQTT
wills, states) and a real collector (its MQTT ingest, writer thread and incident timer, in-process) decides.

A power cut is the agents' connections dropping without a goodbye: the broker publishes their wills.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector import tickets
from collector.api.app import create_app
from collector.config import CollectorConfig
from collector.service import CollectorService
from tests.support.collector import RALLY_BAR, AppClient, FakeAgent
from tests.support.mosquitto import Mosquitto
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

CONFIRM = 3.0
EVALUATE_EVERY = 0.1


class WiredAgent:
    """A FakeAgent on its own MQTT connection, its will registered like the real agent's."""

    def __init__(self, broker: Mosquitto, fake: FakeAgent) -> None:
        self.fake = fake
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"agent-{fake.site}-{fake.agent}", protocol=mqtt.MQTTv311
        )
        birth = fake.birth(at=datetime.now(UTC))
        self.client.will_set(*fake.will(), qos=1, retain=True)
        self.client.connect(broker.host, broker.port, keepalive=30)
        self.client.loop_start()
        self.send(*birth, retain=True)

    def send(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def state(self, state: str, device: str, **options: Any) -> None:
        self.send(*self.fake.state(state, at=datetime.now(UTC), device=device, **options), retain=True)

    def power_cut(self) -> None:
        """The room PC loses power: the connection drops with no DISCONNECT, so the broker sends the will."""
        self.client.loop_stop()
        sock = self.client.socket()
        assert sock is not None
        sock.close()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def devices(count: int, contract: str = RALLY_BAR["contract"]) -> list[dict[str, Any]]:
    return [
        {**RALLY_BAR, "id": f"dev-{index}", "serial": f"SER{index}", "contract": contract}
        for index in range(count)
    ]


@pytest.fixture
def collector(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], CollectorService]]:
    started: list[CollectorService] = []

    def start(extra: dict[str, Any]) -> CollectorService:
        incidents = {
            "confirm_window": CONFIRM,
            "evaluate_every": EVALUATE_EVERY,
            "agent_silent_after": 1.0,
            "unstable": {"degraded_after": 0.5, "flap_count": 3, "flap_window": 600},
            **extra.pop("incidents", {}),
        }
        config = CollectorConfig.model_validate(
            {
                "mqtt": {"host": mosquitto.host, "port": mosquitto.port, "client_id": "collector-scenarios"},
                "store": {"url": f"sqlite:///{tmp_path / 'collector.db'}"},
                "incidents": incidents,
                **extra,
            }
        )
        service = CollectorService(config)
        service.start()
        assert service.subscriber.wait_subscribed(10)
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


@pytest.fixture
def wired(mosquitto: Mosquitto) -> Iterator[Callable[[FakeAgent], WiredAgent]]:
    agents: list[WiredAgent] = []

    def connect(fake: FakeAgent) -> WiredAgent:
        agent = WiredAgent(mosquitto, fake)
        agents.append(agent)
        return agent

    yield connect
    for agent in agents:
        agent.close()


def all_tickets(service: CollectorService) -> list[dict[str, Any]]:
    with service.engine.connect() as conn:
        return tickets.list_tickets(conn)


def wait_states(service: CollectorService, state: str, count: int) -> None:
    def arrived() -> bool:
        with service.engine.connect() as conn:
            from sqlalchemy import func, select

            from collector.store.schema import devices as table

            found = conn.execute(select(func.count()).where(table.c.state == state)).scalar_one()
        return found >= count

    eventually(f"{count} devices {state}", arrived, timeout=30)


def held_reason(service: CollectorService, device: str) -> str:
    """Why the latest evaluation held the device back (waiting for one that has considered it)."""
    return eventually(
        f"{device} held back",
        lambda: service.incidents.last.held.get(("hq", "room-101-pc", device)),
        timeout=30,
    )


def ingested(service: CollectorService, kind: str) -> float:
    """How many messages of ``kind`` the service has stored (its own counter)."""
    value = service.metrics.registry.get_sample_value("hezo_messages_ingested_total", {"kind": kind})
    return value or 0.0


def settle(service: CollectorService, seconds: float) -> None:
    """Wait until the engine has evaluated enough times to cover ``seconds`` (evaluations are at least
    ``EVALUATE_EVERY`` apart): anything due by then would have been opened."""
    wanted = service.incidents.evaluations + math.ceil(seconds / EVALUATE_EVERY) + 2
    eventually(
        f"{wanted} evaluations of the incident rules",
        lambda: service.incidents.evaluations >= wanted,
        timeout=seconds + 30,
    )
    assert service.health() is None


def test_a_site_power_cut_gives_one_site_incident_and_no_device_tickets(
    collector: Callable[[dict[str, Any]], CollectorService], wired: Callable[[FakeAgent], WiredAgent]
) -> None:
    service = collector({})
    pcs = [wired(FakeAgent(agent=f"room-{n}-pc", devices=devices(4))) for n in (101, 102)]
    for pc in pcs:
        for index in range(4):
            pc.state("up", f"dev-{index}")
    wait_states(service, "up", 8)
    for pc in pcs:  # the last thing the agents see: every device stops answering, then the power goes
        for index in range(4):
            pc.state("down", f"dev-{index}")
    wait_states(service, "down", 8)
    for pc in pcs:
        pc.power_cut()

    [incident] = eventually("a site incident", lambda: all_tickets(service) or None, timeout=30)
    assert (incident["cause"], incident["site"], incident["priority"]) == ("agent-silent", "hq", "high")
    settle(service, CONFIRM + 2)
    assert [ticket["cause"] for ticket in all_tickets(service)] == ["agent-silent"]


def test_a_flapping_device_gets_one_high_incident(
    collector: Callable[[dict[str, Any]], CollectorService], wired: Callable[[FakeAgent], WiredAgent]
) -> None:
    service = collector({})
    pc = wired(FakeAgent(devices=devices(1)))
    for _ in range(6):  # each drop far shorter than the confirm window
        pc.state("down", "dev-0")
        pc.state("up", "dev-0")
        time.sleep(0.2)
    [ticket] = eventually("a ticket", lambda: all_tickets(service) or None, timeout=30)
    assert (ticket["cause"], ticket["priority"]) == ("device-unstable", "high")
    before = ingested(service, "state")
    for _ in range(4):
        pc.state("down", "dev-0")
        pc.state("up", "dev-0")
    eventually("the new drops stored", lambda: ingested(service, "state") >= before + 8, timeout=30)
    settle(service, 1.0)
    assert len(all_tickets(service)) == 1


def test_a_device_down_in_a_maintenance_window_gets_no_ticket(
    collector: Callable[[dict[str, Any]], CollectorService], wired: Callable[[FakeAgent], WiredAgent]
) -> None:
    now = datetime.now(UTC)
    window = {
        "name": "firmware-upgrade",
        "site": "hq",
        "agent": "room-101-pc",
        "device": "dev-0",
        "from": (now - timedelta(hours=1)).isoformat(),
        "until": (now + timedelta(hours=1)).isoformat(),
    }
    service = collector({"maintenance": [window]})
    pc = wired(FakeAgent(devices=devices(2)))
    pc.state("down", "dev-0")
    pc.state("down", "dev-1")  # the other device, outside the window, is the witness that evaluations run
    [ticket] = eventually("the witness's ticket", lambda: all_tickets(service) or None, timeout=30)
    assert ticket["device"] == "dev-1"
    assert held_reason(service, "dev-0") == "maintenance window firmware-upgrade"


def test_an_expired_contract_shows_a_warning_and_opens_no_ticket(
    collector: Callable[[dict[str, Any]], CollectorService], wired: Callable[[FakeAgent], WiredAgent]
) -> None:
    contract = {"number": "HZ-OLD-1", "start": "2021-01-01", "years": 3}
    service = collector({"contracts": [contract]})
    pc = wired(FakeAgent(devices=[*devices(1, contract="HZ-OLD-1"), {**devices(2)[1]}]))
    pc.state("down", "dev-0")
    pc.state("down", "dev-1")  # under an unregistered (so trusted) contract: the witness
    [ticket] = eventually("the witness's ticket", lambda: all_tickets(service) or None, timeout=30)
    assert ticket["device"] == "dev-1"
    assert "expired on 2024-01-01" in held_reason(service, "dev-0")
    client = AppClient(create_app(service.engine, sla=service.sla, rules=service.config.incidents))
    warnings = client.get("/api/coverage?problems=true").json()
    assert {(row["device"], row["state"]) for row in warnings} == {
        ("dev-0", "expired"),
        ("dev-1", "unregistered"),
    }
    assert "expired on 2024-01-01" in client.get("/").text


def test_a_lost_peripheral_opens_a_high_ticket(
    collector: Callable[[dict[str, Any]], CollectorService], wired: Callable[[FakeAgent], WiredAgent]
) -> None:
    service = collector({})
    pc = wired(FakeAgent(devices=devices(1)))
    pc.state("degraded", "dev-0")
    [ticket] = eventually("a ticket", lambda: all_tickets(service) or None, timeout=30)
    assert (ticket["cause"], ticket["priority"], ticket["serial"], ticket["contract"]) == (
        "device-unstable",
        "high",
        "SER0",
        RALLY_BAR["contract"],
    )
    assert "degraded since" in ticket["entries"][0]["text"]
