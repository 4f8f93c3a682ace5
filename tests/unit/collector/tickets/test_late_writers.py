"""A writer that read a ticket before another writer changed it (an old lease holder finishing an evaluation
as its site is taken over) changes nothing and writes no entry: each step is written once."""

from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, select

from collector import tickets
from collector.sla.terms import SLA_WARNING, SlaContext
from collector.store.schema import CAUSE_DEVICE_DOWN, outbox
from collector.store.schema import tickets as ticket_table
from tests.support.collector import T0


def opened(engine: Engine) -> int:
    with engine.begin() as conn:
        number = tickets.open_ticket(
            conn,
            tickets.Subject("hq", "pc-1", "dev-1"),
            priority=tickets.PRIORITY_CRITICAL,
            cause=CAUSE_DEVICE_DOWN,
            opened_at=T0,
            response_due=T0 + timedelta(hours=1),
            evidence=None,
            text="dev-1 is down",
        )
        return int(
            conn.execute(select(ticket_table.c.id).where(ticket_table.c.number == number)).scalar_one()
        )


def row(engine: Engine, ticket_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(ticket_table).where(ticket_table.c.id == ticket_id)).one()


def entries(engine: Engine, ticket_id: int, kind: str) -> int:
    with engine.connect() as conn:
        [ticket] = [t for t in tickets.list_tickets(conn) if t["number"] == tickets.ticket_number(ticket_id)]
    return sum(1 for entry in ticket["entries"] if entry["kind"] == kind)


def test_a_ticket_recovered_already_is_not_recovered_again(engine: Engine) -> None:
    ticket_id = opened(engine)
    with engine.begin() as conn:
        assert tickets.recover(conn, ticket_id, T0, "up again")
    with engine.begin() as conn:
        assert not tickets.recover(conn, ticket_id, T0, "up again")
    assert entries(engine, ticket_id, "recovered") == 1


def test_a_ticket_reopened_already_is_not_reopened_again(engine: Engine) -> None:
    ticket_id = opened(engine)
    with engine.begin() as conn:
        tickets.recover(conn, ticket_id, T0, "up again")
    stale = row(engine, ticket_id)
    with engine.begin() as conn:
        assert tickets.reopen(conn, stale, T0, "down-again", "down again")
    with engine.begin() as conn:
        assert not tickets.reopen(conn, stale, T0, "down-again", "down again")
    assert entries(engine, ticket_id, "down-again") == 1


def test_a_recovered_ticket_reopened_meanwhile_is_not_closed(engine: Engine) -> None:
    ticket_id = opened(engine)
    with engine.begin() as conn:
        tickets.recover(conn, ticket_id, T0, "up again")
    with engine.begin() as conn:
        tickets.reopen(conn, row(engine, ticket_id), T0, "down-again", "down again")
    with engine.begin() as conn:
        assert not tickets.close(conn, ticket_id, T0, sources=("recovered",))
    assert row(engine, ticket_id).status == "open"


def test_an_sla_warning_stored_by_another_writer_is_not_stored_again(engine: Engine) -> None:
    ticket_id = opened(engine)
    stale = row(engine, ticket_id)
    late = T0 + timedelta(minutes=50)  # 10 minutes before the response is due: warning
    with engine.begin() as conn:
        first = tickets.refresh(conn, stale, SlaContext.default(), late)
    with engine.begin() as conn:
        second = tickets.refresh(conn, stale, SlaContext.default(), late)
    assert (first.state, first.moved) == (SLA_WARNING, True)
    assert (second.state, second.moved) == (SLA_WARNING, False)
    assert row(engine, ticket_id).sla_state == SLA_WARNING


def test_an_event_is_noted_on_a_ticket_once_whoever_notes_it(engine: Engine) -> None:
    ticket_id = opened(engine)
    for expected in (True, False):
        with engine.begin() as conn:
            noted = tickets.add_entry(conn, ticket_id, T0, "reboot", "Event reboot.", event_id=7)
            assert noted is expected
    with engine.begin() as conn:  # another event: a note of its own
        assert tickets.add_entry(conn, ticket_id, T0, "reboot", "Event reboot.", event_id=8)
    assert entries(engine, ticket_id, "reboot") == 2
    with engine.connect() as conn:
        events = conn.execute(select(outbox.c.event).where(outbox.c.ticket_id == ticket_id)).scalars().all()
    assert sorted(events) == ["opened", "reboot", "reboot"]
