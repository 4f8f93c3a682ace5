"""The engine works in proportion to what changed: it looks only at the devices ingest touched and at those
whose timer falls due, and forgets a device nothing is pending for."""

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from collector import tickets
from collector.config import IncidentsConfig, UnstableConfig
from collector.incidents import engine as engine_module
from collector.incidents.engine import IncidentEngine
from collector.ingest import enrolment
from collector.ingest.pipeline import Ingest
from collector.metrics import Metrics
from collector.registry import maintenance
from collector.store.incident_queue import incident_queue
from collector.store.schema import CAUSE_DEVICE_DOWN, CAUSE_DEVICE_UNSTABLE, agents
from tests.support.collector import RALLY_BAR, T0, Clock, FakeAgent

CONFIRM = 60.0
DEVICES = 20


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def ingest(engine: Engine, metrics: Metrics) -> Ingest:
    return Ingest(engine, metrics, "hezo/v1")


@pytest.fixture
def incidents(engine: Engine, clock: Clock) -> IncidentEngine:
    unstable = UnstableConfig(degraded_after=120)
    settings = IncidentsConfig(confirm_window=CONFIRM, agent_silent_after=120, unstable=unstable)
    return IncidentEngine(engine, confirm_window=CONFIRM, rules=settings, now=clock)


@pytest.fixture
def agent(ingest: Ingest, clock: Clock) -> FakeAgent:
    devices = [{**RALLY_BAR, "id": f"dev-{n:02d}", "serial": f"S{n}"} for n in range(DEVICES)]
    agent = FakeAgent(devices=devices)
    go(ingest, clock, agent.birth(at=clock()))
    for n in range(DEVICES):
        go(ingest, clock, agent.state("up", at=clock(), device=f"dev-{n:02d}"))
    return agent


def go(ingest: Ingest, clock: Clock, message: tuple[str, bytes]) -> None:
    ingest.handle(*message, received_at=clock())


def causes(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return sorted((t["cause"], t["device"]) for t in tickets.list_tickets(conn))


def queued(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(incident_queue.c.device)).scalars())


def test_a_quiet_fleet_is_looked_at_once_then_not_again(
    incidents: IncidentEngine, agent: FakeAgent, clock: Clock, engine: Engine
) -> None:
    incidents.evaluate()
    assert incidents.last.looked_at == DEVICES
    clock.advance(1)
    incidents.evaluate()
    assert incidents.last.looked_at == 0
    assert queued(engine) == []


def test_one_device_down_is_looked_at_alone_and_again_when_its_window_ends(
    ingest: Ingest, incidents: IncidentEngine, agent: FakeAgent, clock: Clock, engine: Engine
) -> None:
    incidents.evaluate()
    go(ingest, clock, agent.state("down", at=clock.advance(1), device="dev-07"))
    incidents.evaluate()
    assert incidents.last.looked_at == 1
    clock.advance(CONFIRM / 2)
    incidents.evaluate()
    assert incidents.last.looked_at == 0  # its timer is not due yet
    clock.advance(CONFIRM / 2)
    incidents.evaluate()
    assert incidents.last.looked_at == 1
    assert causes(engine) == [(CAUSE_DEVICE_DOWN, "dev-07")]
    assert queued(engine) == []  # ticketed: nothing pending until it changes


def test_a_degraded_device_waits_in_the_queue_until_it_has_lasted(
    ingest: Ingest, incidents: IncidentEngine, agent: FakeAgent, clock: Clock, engine: Engine
) -> None:
    incidents.evaluate()
    go(ingest, clock, agent.state("degraded", at=clock.advance(1), device="dev-03"))
    incidents.evaluate()
    assert queued(engine) == ["dev-03"]
    clock.advance(119)
    incidents.evaluate()
    assert incidents.last.looked_at == 0
    clock.advance(1)
    incidents.evaluate()
    assert causes(engine) == [(CAUSE_DEVICE_UNSTABLE, "dev-03")]


def test_closing_a_ticket_makes_its_device_due_again(
    ingest: Ingest, incidents: IncidentEngine, agent: FakeAgent, clock: Clock, engine: Engine
) -> None:
    incidents.evaluate()
    go(ingest, clock, agent.state("down", at=clock(), device="dev-01"))
    clock.advance(CONFIRM)
    incidents.evaluate()
    assert queued(engine) == []
    with engine.begin() as conn:
        ticket = tickets.find_open(conn, "hq", agent.agent, "dev-01", CAUSE_DEVICE_DOWN)
        assert ticket is not None
        tickets.close(conn, ticket.id, clock())
    assert queued(engine) == ["dev-01"]
    incidents.evaluate()
    assert incidents.last.looked_at == 1


def test_an_evaluation_looks_at_a_bounded_number_of_devices_longest_waiting_first(
    ingest: Ingest,
    incidents: IncidentEngine,
    agent: FakeAgent,
    clock: Clock,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine_module, "DEVICES_PER_EVALUATION", 8)
    seen = []
    for _ in range(3):
        incidents.evaluate()
        seen.append((incidents.last.looked_at, incidents.last.more))
    assert seen == [(8, True), (8, True), (DEVICES - 16, False)]


def test_a_confirm_window_that_ends_is_not_queued_behind_changes_that_came_after_it(
    ingest: Ingest,
    incidents: IncidentEngine,
    agent: FakeAgent,
    clock: Clock,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    incidents.evaluate()  # the fleet's first states, looked at
    go(ingest, clock, agent.state("down", at=clock.advance(1), device="dev-05"))
    incidents.evaluate()  # dev-05 waits for its confirm window
    clock.advance(CONFIRM + 1)
    for n in range(DEVICES):  # a storm of changes arrives after the window ended
        if n != 5:
            go(ingest, clock, agent.state("degraded", at=clock(), device=f"dev-{n:02d}"))
    monkeypatch.setattr(engine_module, "DEVICES_PER_EVALUATION", 1)
    incidents.evaluate()
    assert incidents.last.looked_at == 1
    assert causes(engine) == [(CAUSE_DEVICE_DOWN, "dev-05")]


def test_a_device_held_back_is_looked_at_again_until_the_hold_ends(
    ingest: Ingest, incidents: IncidentEngine, agent: FakeAgent, clock: Clock, engine: Engine
) -> None:
    with engine.begin() as conn:
        window = maintenance.values(
            name="swap",
            site="hq",
            agent=agent.agent,
            device="dev-05",
            starts_at=T0,
            ends_at=T0 + timedelta(seconds=CONFIRM * 3),
        )
        maintenance.add(conn, window)
    go(ingest, clock, agent.state("down", at=clock(), device="dev-05"))
    clock.advance(CONFIRM)
    incidents.evaluate()
    assert list(incidents.last.held) == [("hq", agent.agent, "dev-05")]
    assert causes(engine) == []
    clock.advance(CONFIRM)
    incidents.evaluate()
    assert incidents.last.looked_at == 1  # held still: looked at again, not forgotten
    clock.advance(CONFIRM + 1)
    incidents.evaluate()
    assert causes(engine) == [(CAUSE_DEVICE_DOWN, "dev-05")]


def test_a_revoked_agent_is_offline_and_opens_no_site_ticket(
    ingest: Ingest, incidents: IncidentEngine, agent: FakeAgent, clock: Clock, engine: Engine
) -> None:
    with engine.begin() as conn:
        enrolment.enrol(conn, "hq", agent.agent, by="admin", at=clock())
        enrolment.revoke(conn, "hq", agent.agent, by="admin", at=clock())
    with engine.connect() as conn:
        assert conn.execute(select(agents.c.online)).scalar_one() is False
    go(ingest, clock, agent.will())  # the broker drops its connection: its will is published
    clock.advance(600)
    incidents.evaluate()
    assert causes(engine) == []


def test_a_silent_agent_still_opens_its_site_ticket(
    ingest: Ingest, incidents: IncidentEngine, agent: FakeAgent, clock: Clock, engine: Engine
) -> None:
    """The counterpart of the revoked agent: the same silence, not revoked, is a site incident."""
    go(ingest, clock, agent.will())
    clock.advance(600)
    incidents.evaluate()
    assert [cause for cause, _ in causes(engine)] == ["agent-silent"]


def test_devices_dying_together_are_all_ticketed_by_one_evaluation(
    ingest: Ingest, incidents: IncidentEngine, agent: FakeAgent, clock: Clock, engine: Engine
) -> None:
    incidents.evaluate()
    for n in range(DEVICES):
        go(ingest, clock, agent.state("down", at=clock(), device=f"dev-{n:02d}"))
    clock.advance(CONFIRM)
    opened = incidents.evaluate()
    assert len(opened) == DEVICES
    assert causes(engine) == [(CAUSE_DEVICE_DOWN, f"dev-{n:02d}") for n in range(DEVICES)]


def behind_engine(engine: Engine, clock: Clock, lagging: Callable[[], bool]) -> IncidentEngine:
    """An engine whose ingest says it lags as ``lagging()`` does."""
    settings = IncidentsConfig(confirm_window=CONFIRM)
    return IncidentEngine(engine, confirm_window=CONFIRM, rules=settings, now=clock, lagging=lagging)


def test_while_ingest_lags_a_confirmation_waits_a_bounded_time(
    ingest: Ingest, agent: FakeAgent, clock: Clock, engine: Engine
) -> None:
    lagging = [True]
    incidents = behind_engine(engine, clock, lambda: lagging[0])
    incidents.evaluate()
    go(ingest, clock, agent.state("down", at=clock.advance(1), device="dev-03"))
    clock.advance(CONFIRM)
    incidents.evaluate()  # the window has ended, but a message that it came back may still be queued
    assert causes(engine) == []
    assert queued(engine) == ["dev-03"]  # looked at again in a moment
    clock.advance(30)
    incidents.evaluate()
    assert causes(engine) == []
    lagging[0] = False  # ingest caught up: the device is still down
    clock.advance(1)
    incidents.evaluate()
    assert causes(engine) == [(CAUSE_DEVICE_DOWN, "dev-03")]


def test_a_collector_that_stays_behind_still_opens_the_ticket_after_the_hold(
    ingest: Ingest, agent: FakeAgent, clock: Clock, engine: Engine
) -> None:
    incidents = behind_engine(engine, clock, lambda: True)
    incidents.evaluate()
    go(ingest, clock, agent.state("down", at=clock.advance(1), device="dev-03"))
    clock.advance(CONFIRM + 59)
    incidents.evaluate()
    assert causes(engine) == []
    clock.advance(1)
    incidents.evaluate()
    assert causes(engine) == [(CAUSE_DEVICE_DOWN, "dev-03")]
