"""A ticket's deadlines kept up to date on its site's calendar, each missed one recorded once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, Row, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from collector.sla import terms as sla
from collector.store.schema import ACTIVE_STATUSES, sla_breaches, tickets

#: Ticket ids per ``IN`` list when reading the breaches of some tickets.
_IDS_PER_QUERY = 400


def record_breach(
    conn: Connection, ticket_id: int, deadline: str, *, due: datetime, priority: str, at: datetime
) -> bool:
    """Record that ``deadline`` (due at ``due``) was missed; False if it already was."""
    found = select(sla_breaches.c.id).where(
        sla_breaches.c.ticket_id == ticket_id, sla_breaches.c.deadline == deadline, sla_breaches.c.due == due
    )
    if conn.execute(found).first() is not None:
        return False
    values = {
        "ticket_id": ticket_id,
        "deadline": deadline,
        "due": due,
        "detected_at": at,
        "priority": priority,
    }
    # Another writer (the CLI next to the service) may record the same breach in between: the unique
    # constraint keeps one, and ON CONFLICT DO NOTHING keeps this transaction going.
    if conn.dialect.name == "postgresql":
        statement: Any = postgresql_insert(sla_breaches).values(**values).on_conflict_do_nothing()
    else:
        statement = sqlite_insert(sla_breaches).values(**values).on_conflict_do_nothing()
    return bool(conn.execute(statement).rowcount)


class Refreshed(NamedTuple):
    """What ``refresh`` found and did."""

    #: The ticket's SLA state now.
    state: str
    #: The deadlines newly missed and recorded by this call, with their due times.
    recorded: dict[str, datetime]
    #: Whether this call changed the stored SLA state (False: unchanged, or another writer changed it first).
    moved: bool


def refresh(
    conn: Connection,
    row: Row[Any],
    context: sla.SlaContext,
    now: datetime,
    known: set[tuple[int, str, datetime]] | None = None,
) -> Refreshed:
    """Recompute a ticket's deadlines and SLA state, store them if they changed, and record the deadlines
    newly missed. ``known``: the breaches already recorded, (ticket id, deadline, due), if the caller has
    them (saves a query per missed deadline).

    The store is changed only if its SLA state is still ``row``'s: a writer that read the ticket before
    another one stored the same change writes nothing and is told so (``moved``), so a warning is noted
    once however many writers see it come.
    """
    times = sla.TicketTimes.of_row(row)
    due = sla.deadlines(context.policy, context.calendars[row.site], times)
    pending = sla.running(times, due)
    state = sla.state_at(context.policy, pending, now)
    recorded = {
        kind: when
        for kind, when in sla.missed(pending, now).items()
        if (known is None or (row.id, kind, when) not in known)
        and record_breach(conn, row.id, kind, due=when, priority=row.priority, at=now)
    }
    values: dict[str, Any] = {**due.as_dict(), "sla_state": state}
    if row.status == "closed":
        values.update(update_due=None, sla_state=sla.SLA_NONE)
        state = sla.SLA_NONE
    moved = False
    if any(getattr(row, key) != value for key, value in values.items()):
        unchanged = tickets.c.sla_state.is_not_distinct_from(row.sla_state)
        written = conn.execute(update(tickets).where(tickets.c.id == row.id, unchanged).values(**values))
        moved = bool(written.rowcount) and values["sla_state"] != row.sla_state
    return Refreshed(state, recorded, moved)


def known_breaches(conn: Connection, ids: Sequence[int] | None = None) -> set[tuple[int, str, datetime]]:
    """The breaches recorded for tickets not closed (of tickets ``ids`` only, if given), as (ticket id,
    deadline, due)."""
    query = (
        select(sla_breaches.c.ticket_id, sla_breaches.c.deadline, sla_breaches.c.due)
        .join(tickets, tickets.c.id == sla_breaches.c.ticket_id)
        .where(tickets.c.status.in_(ACTIVE_STATUSES))
    )
    if ids is None:
        return {(row.ticket_id, row.deadline, row.due) for row in conn.execute(query)}
    found: set[tuple[int, str, datetime]] = set()
    for start in range(0, len(ids), _IDS_PER_QUERY):
        chunk = query.where(sla_breaches.c.ticket_id.in_(ids[start : start + _IDS_PER_QUERY]))
        found.update((row.ticket_id, row.deadline, row.due) for row in conn.execute(chunk))
    return found


def breach_counts(conn: Connection) -> list[tuple[str, str, int]]:
    """(priority, deadline, how many) of every SLA breach recorded."""
    query = select(sla_breaches.c.priority, sla_breaches.c.deadline, func.count()).group_by(
        sla_breaches.c.priority, sla_breaches.c.deadline
    )
    return [(row[0], row[1], int(row[2])) for row in conn.execute(query)]
