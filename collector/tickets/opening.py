"""Many tickets opened at once: a batch of the engine's automatic tickets in a few statements.

``open_ticket`` (records) costs some six statements per ticket, each a round trip; when 1 % of a large fleet
dies together that held ingest for seconds. ``open_tickets`` inserts the tickets, numbers them, and writes
their ``opened`` entries and outbox events, one statement each for the whole batch. A ticket that the partial
unique index refuses (its device already has an active ticket for that cause: another collector opened it
first) is skipped, not an error, and its number is None.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, update
from sqlalchemy.dialects import postgresql, sqlite

from collector.sla import terms as sla
from collector.store.schema import outbox, ticket_entries, tickets
from collector.tickets.records import Subject, event_of, ticket_number

_NUMBER = update(tickets).where(tickets.c.id == bindparam("k_id")).values(number=bindparam("k_number"))


@dataclass(frozen=True)
class Opening:
    """One ticket to open, as ``open_ticket`` takes it."""

    subject: Subject
    priority: str
    cause: str
    response_due: datetime
    evidence: Any
    text: str
    summary: str | None = None


def open_tickets(
    conn: Connection, openings: Sequence[Opening], *, opened_at: datetime, opened_by: str = "collector"
) -> list[str | None]:
    """Open these tickets, each with its ``opened`` entry; their numbers in order (None: refused as a second
    active ticket of its device and cause)."""
    if not openings:
        return []
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(tickets)
        .on_conflict_do_nothing()
        .returning(tickets.c.id, tickets.c.site, tickets.c.agent, tickets.c.device, tickets.c.cause)
    )
    rows = [
        {
            "site": o.subject.site,
            "agent": o.subject.agent,
            "device": o.subject.device,
            "model": o.subject.model,
            "serial": o.subject.serial,
            "contract": o.subject.contract,
            "room": o.subject.room,
            "priority": o.priority,
            "cause": o.cause,
            "status": "open",
            "opened_at": opened_at,
            "response_due": o.response_due,
            "evidence": o.evidence,
            "opened_by": opened_by,
            "summary": o.summary,
            "sla_state": sla.SLA_OK,
        }
        for o in openings
    ]
    made = {(r.site, r.agent, r.device, r.cause): int(r.id) for r in conn.execute(statement, rows)}
    ids: list[int | None] = []
    for o in openings:
        # Two openings of one device and cause in one batch: the first row inserted is the ticket.
        ids.append(made.pop((o.subject.site, o.subject.agent, o.subject.device, o.cause), None))
    opened = [(ticket_id, o) for ticket_id, o in zip(ids, openings, strict=True) if ticket_id is not None]
    if opened:
        conn.execute(_NUMBER, [{"k_id": t, "k_number": ticket_number(t)} for t, _ in opened])
        entries = conn.execute(
            insert(ticket_entries).returning(ticket_entries.c.id, ticket_entries.c.ticket_id),
            [
                {
                    "ticket_id": t,
                    "at": opened_at,
                    "kind": "opened",
                    "text": o.text,
                    "by": opened_by,
                    "sla_state": sla.SLA_OK,
                }
                for t, o in opened
            ],
        ).all()
        conn.execute(
            insert(outbox),
            [
                {
                    "ticket_id": e.ticket_id,
                    "entry_id": e.id,
                    "event": event_of("opened"),
                    "created_at": opened_at,
                }
                for e in entries
            ],
        )
    return [None if t is None else ticket_number(t) for t in ids]
