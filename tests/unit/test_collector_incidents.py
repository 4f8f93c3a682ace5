"""The ticket rule: a confirmed down device behind an online agent gets one Critical ticket."""

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from collector import tickets
from collector.incidents import IncidentEngine
from collector.ingest import Ingest
from collector.metrics import Metrics
from tests.support.collector import T0, Clock, FakeAgent, migrated_engine

WINDOW = 60.0


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return migrated_engine(tmp_path)


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def ingest(engine: Engine) -> Ingest:
    return Ingest(engine, Metrics(), "hezo/v1")


@pytest.fixture
def incidents(engine: Engine, clock: Clock) -> IncidentEngine:
    return IncidentEngine(engine, confirm_window=WINDOW, critical_response_hours=1, now=clock)


@pytest.fixture
def agent(ingest: Ingest) -> FakeAgent:
    agent = FakeAgent()
    ingest.handle(*agent.birth(at=T0), T0)
    return agent


def all_tickets(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return tickets.list_tickets(conn)


def go(ingest: Ingest, clock: Clock, message: tuple[str, bytes]) -> None:
    ingest.handle(*message, clock())


def test_no_ticket_before_the_confirm_window_ends(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    go(ingest, clock, agent.state("down", at=clock()))
    clock.advance(WINDOW - 1)
    assert incidents.evaluate() == []
    assert all_tickets(engine) == []


def test_ticket_opens_when_the_window_ends_with_serial_contract_and_deadline(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    go(ingest, clock, agent.state("down", at=clock()))
    opened_at = clock.advance(WINDOW)

    assert incidents.evaluate() == ["HZ-000001"]

    [ticket] = all_tickets(engine)
    assert ticket["number"] == "HZ-000001"
    assert (ticket["priority"], ticket["status"], ticket["cause"]) == ("critical", "open", "device-down")
    assert (ticket["serial"], ticket["contract"]) == ("2034FH1002R2", "HZ-2026-0042")
    assert (ticket["model"], ticket["room"], ticket["site"]) == ("rally-bar", "Room 101", "hq")
    assert ticket["opened_at"] == opened_at
    assert ticket["response_due"] == opened_at + timedelta(hours=1)
    assert ticket["evidence"][0]["detail"] == "connection refused"
    assert [entry["kind"] for entry in ticket["entries"]] == ["opened"]
    assert "2034FH1002R2" in ticket["entries"][0]["text"]


def test_no_ticket_for_a_device_behind_an_offline_agent(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    go(ingest, clock, agent.state("down", at=clock()))
    go(ingest, clock, agent.death())
    clock.advance(WINDOW * 10)
    assert incidents.evaluate() == []
    assert all_tickets(engine) == []


def test_device_coming_back_marks_the_ticket_recovered(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    go(ingest, clock, agent.state("down", at=clock()))
    clock.advance(WINDOW)
    incidents.evaluate()
    back = clock.advance(300)
    go(ingest, clock, agent.state("up", at=back))

    [ticket] = all_tickets(engine)
    assert ticket["status"] == "recovered"
    assert ticket["recovered_at"] == back
    assert [entry["kind"] for entry in ticket["entries"]] == ["opened", "recovered"]


def test_one_ticket_per_device_across_down_up_down(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    go(ingest, clock, agent.state("down", at=clock()))
    clock.advance(WINDOW)
    incidents.evaluate()
    go(ingest, clock, agent.state("up", at=clock.advance(10)))
    go(ingest, clock, agent.state("down", at=clock.advance(10)))
    clock.advance(WINDOW * 2)
    assert incidents.evaluate() == []

    [ticket] = all_tickets(engine)
    assert ticket["status"] == "open"
    assert ticket["recovered_at"] is None
    assert [entry["kind"] for entry in ticket["entries"]] == ["opened", "recovered", "down-again"]


def test_evaluating_twice_opens_one_ticket(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    go(ingest, clock, agent.state("down", at=clock()))
    clock.advance(WINDOW)
    incidents.evaluate()
    clock.advance(1)
    assert incidents.evaluate() == []
    assert len(all_tickets(engine)) == 1


def test_database_refuses_a_second_open_ticket_for_the_same_cause(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    go(ingest, clock, agent.state("down", at=clock()))
    clock.advance(WINDOW)
    incidents.evaluate()
    with pytest.raises(IntegrityError), engine.begin() as conn:
        tickets.open_ticket(
            conn,
            site="hq",
            agent="room-101-pc",
            device="rally-bar-1",
            model=None,
            serial=None,
            contract=None,
            room=None,
            priority="critical",
            cause="device-down",
            opened_at=clock(),
            response_due=clock(),
            evidence=[],
            text="a second one",
        )
