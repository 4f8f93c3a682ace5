"""The SLA rule reads only the tickets whose SLA state may change now (a running deadline near or past, a
warning or a breach standing, a ticket another rule just moved), and every active ticket once per sweep;
warnings and breaches still come on time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from collector import tickets
from collector.incidents.engine import IncidentEngine
from collector.incidents.rules.sla import SWEEP
from collector.ingest.pipeline import Ingest
from collector.metrics import Metrics
from collector.sla.terms import SlaContext
from collector.store.schema import CAUSE_DEVICE_DOWN
from tests.support.collector import Clock, FakeAgent

CONFIRM = 60.0
MINUTE = 60.0


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def incidents(engine: Engine, clock: Clock) -> IncidentEngine:
    return IncidentEngine(engine, confirm_window=CONFIRM, now=clock)


def opened(engine: Engine, clock: Clock, device: str) -> str:
    """A Critical ticket opened now: its response is due in an hour, warned of 15 minutes before."""
    with engine.begin() as conn:
        return tickets.open_ticket(
            conn,
            tickets.Subject("hq", "pc-1", device),
            priority=tickets.PRIORITY_CRITICAL,
            cause=CAUSE_DEVICE_DOWN,
            opened_at=clock(),
            response_due=clock() + timedelta(hours=1),
            evidence=None,
            text=f"{device} is down",
        )


def test_between_sweeps_only_tickets_near_a_deadline_are_read(
    engine: Engine, clock: Clock, incidents: IncidentEngine
) -> None:
    first = opened(engine, clock, "dev-1")  # response due at +60 min
    clock.advance(8 * MINUTE)
    second = opened(engine, clock, "dev-2")  # due at +68 min
    clock.advance(30 * MINUTE)  # +38
    incidents.evaluate()
    assert incidents.last.sla_read == 2  # the first evaluation reads every active ticket
    clock.advance(MINUTE)  # +39
    incidents.evaluate()
    assert incidents.last.sla_read == 0  # neither is within the warning time yet
    clock.advance(7 * MINUTE)  # +46
    incidents.evaluate()
    assert (incidents.last.sla_read, incidents.last.warned) == (1, [first])
    clock.advance(MINUTE)  # +47
    incidents.evaluate()
    assert (incidents.last.sla_read, incidents.last.warned) == (1, [])  # in warning: read until it ends
    clock.advance(SWEEP.total_seconds())  # +57, a sweep: every active ticket again
    incidents.evaluate()
    assert (incidents.last.sla_read, incidents.last.warned) == (2, [second])


def test_a_breach_between_sweeps_is_recorded_when_it_happens(
    engine: Engine, clock: Clock, incidents: IncidentEngine
) -> None:
    number = opened(engine, clock, "dev-1")
    clock.advance(44 * MINUTE)
    incidents.evaluate()  # a sweep
    clock.advance(2 * MINUTE)  # +46
    incidents.evaluate()
    assert incidents.last.warned == [number]
    clock.advance(9 * MINUTE)  # +55, a sweep
    incidents.evaluate()
    clock.advance(6 * MINUTE)  # +61: past due, short of the next sweep
    incidents.evaluate()
    assert (incidents.last.sla_read, incidents.last.breached) == (1, [(number, "response")])


def test_a_reopened_ticket_gets_its_update_deadline_before_the_next_sweep(
    engine: Engine, metrics: Metrics, clock: Clock, incidents: IncidentEngine
) -> None:
    ingest = Ingest(engine, metrics, "hezo/v1")
    agent = FakeAgent()

    def go(message: tuple[str, bytes]) -> None:
        ingest.handle(*message, received_at=clock())

    go(agent.birth(at=clock()))
    go(agent.state("down", at=clock()))
    clock.advance(CONFIRM + 1)
    [number] = incidents.evaluate()
    sla = SlaContext.default()
    with engine.begin() as conn:
        tickets.step(conn, number, "respond", by="eve", now=clock.advance(MINUTE), context=sla)
    go(agent.state("up", at=clock.advance(MINUTE)))
    incidents.evaluate()
    assert incidents.last.recovered == [number]
    with engine.begin() as conn:  # a note refreshes the recovered ticket: no update deadline while recovered
        tickets.note(conn, number, "watching it", by="eve", now=clock.advance(MINUTE), context=sla)
        assert tickets.get_ticket(conn, number)["update_due"] is None  # type: ignore[index]
    go(agent.state("down", at=clock.advance(MINUTE)))
    clock.advance(CONFIRM + 1)
    incidents.evaluate()
    assert incidents.last.reopened == [number]
    with engine.connect() as conn:
        ticket = tickets.get_ticket(conn, number)
    assert ticket is not None
    assert ticket["status"] == "responded"
    assert ticket["update_due"] == ticket["responded_at"] + timedelta(hours=1)  # Critical: hourly updates
