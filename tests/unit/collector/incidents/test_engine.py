"""The ticket rule: a confirmed down device behind an online agent gets one Critical ticket."""

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.exc import IntegrityError

from collector import tickets
from collector.incidents.engine import IncidentEngine
from collector.ingest.pipeline import Ingest
from collector.metrics import Metrics
from collector.store.schema import CAUSE_AGENT_SILENT, CAUSE_DEVICE_DOWN
from tests.support.collector import RALLY_BAR, T0, Clock, FakeAgent

WINDOW = 60.0


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


def lifecycle(ticket: dict[str, Any]) -> list[str]:
    """The kinds of a ticket's timeline entries, without the SLA warnings and breaches."""
    return [entry["kind"] for entry in ticket["entries"] if not entry["kind"].startswith("sla-")]


def all_tickets(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return tickets.list_tickets(conn)


def hour_reopen_window(engine: Engine, clock: Clock) -> IncidentEngine:
    return IncidentEngine(
        engine, confirm_window=WINDOW, critical_response_hours=1, reopen_window=3600, now=clock
    )


def recovered_ticket(ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent) -> None:
    """The device goes down, its ticket opens after the confirm window, and it comes back 10 s later."""
    go(ingest, clock, agent.state("down", at=clock()))
    clock.advance(WINDOW)
    incidents.evaluate()
    go(ingest, clock, agent.state("up", at=clock.advance(10)))
    incidents.evaluate()


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
    assert lifecycle(ticket) == ["opened"]
    assert "2034FH1002R2" in ticket["entries"][0]["text"]


def test_no_device_ticket_for_a_device_behind_an_offline_agent(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    go(ingest, clock, agent.state("down", at=clock()))
    go(ingest, clock, agent.death())
    clock.advance(WINDOW * 10)
    incidents.evaluate()
    assert [ticket["cause"] for ticket in all_tickets(engine)] == [CAUSE_AGENT_SILENT]


def test_device_coming_back_marks_the_ticket_recovered(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    go(ingest, clock, agent.state("down", at=clock()))
    clock.advance(WINDOW)
    incidents.evaluate()
    back = clock.advance(300)
    go(ingest, clock, agent.state("up", at=back))
    incidents.evaluate()

    [ticket] = all_tickets(engine)
    assert ticket["status"] == "recovered"
    assert ticket["recovered_at"] == back
    assert lifecycle(ticket) == ["opened", "recovered"]


def test_one_ticket_per_device_across_down_up_down(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    recovered_ticket(ingest, incidents, clock, agent)
    go(ingest, clock, agent.state("down", at=clock.advance(10)))
    clock.advance(WINDOW * 2)
    assert incidents.evaluate() == []

    [ticket] = all_tickets(engine)
    assert ticket["status"] == "open"
    assert ticket["recovered_at"] is None
    assert lifecycle(ticket) == ["opened", "recovered", "down-again"]


def test_a_recovered_ticket_reopens_only_after_the_confirm_window(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    recovered_ticket(ingest, incidents, clock, agent)

    go(ingest, clock, agent.state("down", at=clock.advance(10)))  # a blip: back up within the window
    clock.advance(WINDOW - 1)
    incidents.evaluate()
    assert all_tickets(engine)[0]["status"] == "recovered"
    go(ingest, clock, agent.state("up", at=clock.advance(0.5)))
    clock.advance(WINDOW * 2)
    incidents.evaluate()

    [ticket] = all_tickets(engine)
    assert ticket["status"] == "recovered"
    assert lifecycle(ticket) == ["opened", "recovered"]


def test_a_fault_long_after_recovery_opens_a_new_ticket_with_fresh_deadlines(
    ingest: Ingest, engine: Engine, clock: Clock, agent: FakeAgent
) -> None:
    reopen_window = 3600.0
    incidents = IncidentEngine(
        engine, confirm_window=WINDOW, critical_response_hours=1, reopen_window=reopen_window, now=clock
    )
    recovered_ticket(ingest, incidents, clock, agent)

    clock.advance(reopen_window)
    incidents.evaluate()
    [closed] = all_tickets(engine)
    assert closed["status"] == "closed"
    assert closed["entries"][-1]["kind"] == "closed"
    assert closed["entries"][-1]["text"] == "No fault for 1 h after recovery."

    go(ingest, clock, agent.state("down", at=clock.advance(100)))
    opened_at = clock.advance(WINDOW)
    assert incidents.evaluate() == ["HZ-000002"]
    new, old = all_tickets(engine)
    assert (new["number"], new["status"], old["status"]) == ("HZ-000002", "open", "closed")
    assert new["response_due"] == opened_at + timedelta(hours=1)
    assert lifecycle(old) == ["opened", "recovered", "closed"]


def test_a_fault_within_the_reopen_window_reopens_the_recovered_ticket(
    ingest: Ingest, engine: Engine, clock: Clock, agent: FakeAgent
) -> None:
    incidents = hour_reopen_window(engine, clock)
    recovered_ticket(ingest, incidents, clock, agent)
    go(ingest, clock, agent.state("down", at=clock.advance(3000)))
    clock.advance(WINDOW)
    incidents.evaluate()

    [ticket] = all_tickets(engine)
    assert ticket["status"] == "open"
    assert lifecycle(ticket) == ["opened", "recovered", "down-again"]


def test_same_device_id_under_two_agents_gets_two_tickets_and_recovers_only_its_own(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, engine: Engine
) -> None:
    room_101 = FakeAgent(agent="room-101-pc", devices=[{**RALLY_BAR, "id": "rally-bar"}])
    room_102 = FakeAgent(agent="room-102-pc", devices=[{**RALLY_BAR, "id": "rally-bar", "serial": "SECOND"}])
    for agent in (room_101, room_102):
        go(ingest, clock, agent.birth(at=clock()))
        go(ingest, clock, agent.state("down", at=clock(), device="rally-bar"))
    clock.advance(WINDOW)
    assert sorted(incidents.evaluate()) == ["HZ-000001", "HZ-000002"]

    go(ingest, clock, room_101.state("up", at=clock.advance(5), device="rally-bar"))
    incidents.evaluate()

    by_agent = {ticket["agent"]: ticket for ticket in all_tickets(engine)}
    assert by_agent["room-101-pc"]["status"] == "recovered"
    assert (by_agent["room-102-pc"]["status"], by_agent["room-102-pc"]["serial"]) == ("open", "SECOND")


def test_no_ticket_from_the_previous_start_of_a_restarted_agent(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    # Device down, agent SIGKILLed (the broker publishes its will), device repaired meanwhile, agent restarts.
    go(ingest, clock, agent.state("down", at=clock()))
    go(ingest, clock, agent.will())
    clock.advance(WINDOW * 5)
    agent.restart()
    go(ingest, clock, agent.birth(at=clock()))
    clock.advance(1)

    assert incidents.evaluate() == []
    assert all_tickets(engine) == []
    # The new start's first check still finds it down: the confirm window runs from there.
    go(ingest, clock, agent.state("down", at=clock()))
    clock.advance(WINDOW - 1)
    assert incidents.evaluate() == []
    clock.advance(1)
    assert incidents.evaluate() == ["HZ-000001"]


def test_a_retired_device_gets_no_ticket(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    go(ingest, clock, agent.state("down", at=clock()))
    agent.devices = []  # removed from the agent's config; the agent reconnects
    go(ingest, clock, agent.birth(at=clock()))
    clock.advance(WINDOW * 2)
    assert incidents.evaluate() == []
    assert all_tickets(engine) == []


def test_an_up_stored_between_reading_and_opening_prevents_the_ticket(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    go(ingest, clock, agent.state("down", at=clock()))
    clock.advance(WINDOW)
    up = agent.state("up", at=clock())
    injected = []

    def up_right_after_the_candidates_are_read(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # The moment the engine has read the down device, the device comes back (ingest on its connection).
        if not injected and "FROM devices JOIN agents" in statement:
            injected.append(True)
            go(ingest, clock, up)

    event.listen(engine, "after_cursor_execute", up_right_after_the_candidates_are_read)
    try:
        assert incidents.evaluate() == []
    finally:
        event.remove(engine, "after_cursor_execute", up_right_after_the_candidates_are_read)
    assert injected
    assert all_tickets(engine) == []


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
            tickets.Subject("hq", "room-101-pc", "rally-bar-1"),
            priority="critical",
            cause="device-down",
            opened_at=clock(),
            response_due=clock(),
            evidence=[],
            text="a second one",
        )


@pytest.mark.parametrize("recovered_first", [False, True], ids=["open", "recovered"])
def test_the_ticket_of_a_retired_device_is_closed(
    ingest: Ingest,
    incidents: IncidentEngine,
    clock: Clock,
    agent: FakeAgent,
    engine: Engine,
    recovered_first: bool,
) -> None:
    go(ingest, clock, agent.state("down", at=clock()))
    clock.advance(WINDOW)
    incidents.evaluate()
    if recovered_first:
        go(ingest, clock, agent.state("up", at=clock.advance(10)))
        incidents.evaluate()
    agent.devices = []  # removed from the agent's config; the agent reconnects
    go(ingest, clock, agent.birth(at=clock.advance(10)))
    closed_at = clock.advance(1)
    incidents.evaluate()

    [ticket] = all_tickets(engine)
    assert ticket["status"] == "closed"
    assert ticket["entries"][-1] == {
        "at": closed_at,
        "kind": "closed",
        "text": "Device removed from the agent's inventory.",
        "by": "collector",
        "sla_state": None,
    }
    assert incidents.last.closed == ["HZ-000001"]


def test_a_recovered_ticket_is_not_closed_while_its_device_is_down_again_unconfirmed(
    ingest: Ingest, engine: Engine, clock: Clock, agent: FakeAgent
) -> None:
    reopen_window = 3600.0
    incidents = IncidentEngine(
        engine, confirm_window=WINDOW, critical_response_hours=1, reopen_window=reopen_window, now=clock
    )
    recovered_ticket(ingest, incidents, clock, agent)
    go(ingest, clock, agent.state("down", at=clock.advance(reopen_window - 10)))
    clock.advance(20)  # the reopen window is over; the new fault is not confirmed yet
    incidents.evaluate()
    assert all_tickets(engine)[0]["status"] == "recovered"

    clock.advance(WINDOW)
    assert incidents.evaluate() == []
    [ticket] = all_tickets(engine)
    assert ticket["status"] == "open"
    assert lifecycle(ticket) == ["opened", "recovered", "down-again"]


def test_a_recovered_ticket_is_not_closed_while_its_device_is_down_behind_an_offline_agent(
    ingest: Ingest, engine: Engine, clock: Clock, agent: FakeAgent
) -> None:
    incidents = hour_reopen_window(engine, clock)
    recovered_ticket(ingest, incidents, clock, agent)
    go(ingest, clock, agent.state("down", at=clock.advance(100)))
    go(ingest, clock, agent.will())
    clock.advance(7200)
    incidents.evaluate()
    [device_ticket] = [ticket for ticket in all_tickets(engine) if ticket["cause"] == CAUSE_DEVICE_DOWN]
    assert device_ticket["status"] == "recovered"
