"""Tickets opened in a batch: the same few statements for any number of tickets, each with its number, its
``opened`` entry and its outbox event, and a device that already has an active ticket of the cause skipped."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, event, func, select

from collector import tickets
from collector.store.schema import CAUSE_DEVICE_DOWN, outbox, ticket_entries
from tests.support.collector import T0


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def openings(count: int, site: str = "hq") -> list[tickets.Opening]:
    return [
        tickets.Opening(
            tickets.Subject(site, "pc-1", f"dev-{n:03d}", serial=f"S{n}"),
            priority=tickets.PRIORITY_CRITICAL,
            cause=CAUSE_DEVICE_DOWN,
            response_due=T0 + timedelta(hours=1),
            evidence=[{"driver": "https", "ok": False}],
            text=f"dev-{n:03d} is down",
        )
        for n in range(count)
    ]


def test_a_batch_opens_every_ticket_with_its_entry_and_event(engine: Engine) -> None:
    with engine.begin() as conn:
        numbers = tickets.open_tickets(conn, openings(40), opened_at=T0)
    assert len(set(numbers)) == 40
    assert all(number is not None and number.startswith("HZ-") for number in numbers)
    with engine.connect() as conn:
        listed = {t["number"]: t for t in tickets.list_tickets(conn)}
        entries = conn.execute(select(func.count()).select_from(ticket_entries)).scalar_one()
        events = conn.execute(select(outbox.c.event)).scalars().all()
    assert sorted(listed) == sorted(n for n in numbers if n is not None)
    first = listed[numbers[0] or ""]
    assert (first["device"], first["serial"], first["priority"], first["status"]) == (
        "dev-000",
        "S0",
        "critical",
        "open",
    )
    assert [e["kind"] for e in first["entries"]] == ["opened"]
    assert entries == 40
    assert events == ["opened"] * 40


def test_a_device_with_an_active_ticket_is_skipped_and_the_rest_open(engine: Engine) -> None:
    with engine.begin() as conn:
        (earlier,) = tickets.open_tickets(conn, openings(1), opened_at=T0)
    with engine.begin() as conn:
        numbers = tickets.open_tickets(conn, openings(5), opened_at=T0 + timedelta(minutes=1))
    assert earlier is not None
    assert numbers[0] is None
    assert all(number is not None for number in numbers[1:])
    with engine.connect() as conn:
        assert len(tickets.list_tickets(conn)) == 5


def test_two_openings_of_one_device_in_a_batch_make_one_ticket(engine: Engine) -> None:
    twice = openings(1) * 2
    with engine.begin() as conn:
        numbers = tickets.open_tickets(conn, twice, opened_at=T0)
    assert numbers[0] is not None
    assert numbers[1] is None


def test_a_batch_costs_the_same_statements_whatever_its_size(engine: Engine) -> None:
    with statements(engine) as few, engine.begin() as conn:
        tickets.open_tickets(conn, openings(2, site="small"), opened_at=T0)
    with statements(engine) as many, engine.begin() as conn:
        tickets.open_tickets(conn, openings(60, site="large"), opened_at=T0)
    assert len(many) == len(few)
