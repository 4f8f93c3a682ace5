"""A delivery's notice: the ticket as it stands, the timeline entry of the event, and how to refer to it."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import Connection, select

from collector.notify.outbox import Due, link_of
from collector.sinks.base import Notice
from collector.sla.terms import Calendars
from collector.store.schema import contracts, outbox, ticket_entries, tickets

#: Ticket columns a notice leaves out: internal, or already said by the entry.
_HIDDEN = frozenset({"id"})


def notice_for(conn: Connection, due: Due, *, base_url: str, calendars: Calendars) -> Notice:
    """The notice of ``due``, read in ``conn``."""
    row = conn.execute(
        select(
            outbox.c.event,
            ticket_entries.c.at,
            ticket_entries.c.kind,
            ticket_entries.c.text,
            ticket_entries.c.by,
            tickets,
            contracts.c.customer,
        )
        .join(ticket_entries, ticket_entries.c.id == outbox.c.entry_id)
        .join(tickets, tickets.c.id == outbox.c.ticket_id)
        .outerjoin(contracts, contracts.c.number == tickets.c.contract)
        .where(outbox.c.id == due.outbox_id)
    ).one()
    ticket: dict[str, Any] = {
        column.name: row._mapping[column.name] for column in tickets.c if column.name not in _HIDDEN
    }
    ticket["customer"] = row.customer
    number = str(ticket["number"])
    key = f"hezo.{number}.{due.outbox_id}.{due.sink}"
    if due.recipient:
        key += "." + hashlib.sha256(due.recipient.encode()).hexdigest()[:12]
    return Notice(
        event=row.event,
        ticket=ticket,
        entry={"at": row.at, "kind": row.kind, "text": row.text, "by": row.by},
        key=key,
        thread=f"hezo.{number}",
        url=f"{base_url.rstrip('/')}/api/tickets/{number}",
        timezone=calendars[str(ticket["site"])].timezone.key,
        link=link_of(conn, due.ticket_id, due.sink),
        attempt=due.attempts + 1,
        recipient=due.recipient or None,
    )
