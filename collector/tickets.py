"""The collector's own tickets: open, change status, add timeline entries, list and read.

Every function takes a connection inside the caller's transaction, so a ticket and its first entry are
written together or not at all.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from collector import sla
from collector.store import ACTIVE_STATUSES, CAUSE_MANUAL, sla_breaches, ticket_entries, tickets

PRIORITY_CRITICAL = "critical"
PRIORITY_HIGH = "high"
PRIORITY_LOW = "low"
PRIORITIES = (PRIORITY_CRITICAL, PRIORITY_HIGH, PRIORITY_LOW)


class TicketError(ValueError):
    """A step refused: bad input; the message says why. Subclasses: unknown ticket, illegal transition."""


class NoSuchTicketError(TicketError):
    """No ticket has that number."""


class IllegalTransitionError(TicketError):
    """The ticket's status does not allow the step."""


@dataclass(frozen=True)
class Step:
    """An engineer's step: from which statuses, to which status, and the time column it stamps."""

    name: str
    sources: frozenset[str]
    target: str | None  # None: the status stays
    stamp: str | None
    done: str  # the entry text's verb


#: The ticket lifecycle (docs/incidents.md). ``note`` is allowed in every status, closed included.
STEPS: dict[str, Step] = {
    step.name: step
    for step in (
        Step("respond", frozenset({"open", "recovered"}), None, "responded_at", "responded"),
        Step("confirm", frozenset({"open", "responded"}), "confirmed", "confirmed_at", "fault confirmed"),
        Step("ship", frozenset({"confirmed"}), "shipped", "shipped_at", "replacement shipped"),
        Step("deliver", frozenset({"shipped"}), "delivered", "delivered_at", "replacement delivered"),
        Step("return", frozenset({"delivered"}), "returned", "returned_at", "faulty unit returned"),
        Step("resolve", frozenset({"open", "responded", "recovered"}), "resolved", "resolved_at", "resolved"),
        Step("close", frozenset({"returned", "resolved", "recovered"}), "closed", "closed_at", "closed"),
    )
}


def ticket_number(ticket_id: int) -> str:
    """The number people quote on the phone: ``HZ-000042``."""
    return f"HZ-{ticket_id:06d}"


def find_open(conn: Connection, site: str, agent: str, device: str, cause: str) -> Row[Any] | None:
    """The ticket still open (any status but closed) for this device and cause, if any.

    A device is ``(site, agent, device)``: device ids are unique per agent only.
    """
    query = select(tickets).where(
        tickets.c.site == site,
        tickets.c.agent == agent,
        tickets.c.device == device,
        tickets.c.cause == cause,
        tickets.c.status.in_(ACTIVE_STATUSES),
    )
    return conn.execute(query).first()


def add_entry(
    conn: Connection,
    ticket_id: int,
    at: datetime,
    kind: str,
    text: str,
    *,
    by: str = "collector",
    sla_state: str | None = None,
) -> None:
    """Append one line to a ticket's timeline: when, what, by whom, and the SLA state at that moment."""
    conn.execute(
        insert(ticket_entries).values(
            ticket_id=ticket_id, at=at, kind=kind, text=text, by=by, sla_state=sla_state
        )
    )


def open_ticket(
    conn: Connection,
    *,
    site: str,
    agent: str,
    device: str,
    model: str | None,
    serial: str | None,
    contract: str | None,
    room: str | None,
    priority: str,
    cause: str,
    opened_at: datetime,
    response_due: datetime,
    evidence: Any,
    text: str,
    opened_by: str = "collector",
    summary: str | None = None,
) -> str:
    """Insert a ticket with its ``opened`` entry and return its number.

    Raises ``sqlalchemy.exc.IntegrityError`` if the device already has an open ticket for ``cause``
    (the partial unique index), which a caller racing another collector treats as "already done".
    """
    result = conn.execute(
        insert(tickets).values(
            site=site,
            agent=agent,
            device=device,
            model=model,
            serial=serial,
            contract=contract,
            room=room,
            priority=priority,
            cause=cause,
            status="open",
            opened_at=opened_at,
            response_due=response_due,
            evidence=evidence,
            opened_by=opened_by,
            summary=summary,
            sla_state=sla.SLA_OK,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    ticket_id = int(key[0])
    number = ticket_number(ticket_id)
    conn.execute(update(tickets).where(tickets.c.id == ticket_id).values(number=number))
    add_entry(conn, ticket_id, opened_at, "opened", text, by=opened_by, sla_state=sla.SLA_OK)
    return number


def set_status(conn: Connection, ticket_id: int, status: str, *, recovered_at: datetime | None) -> None:
    """Change a ticket's status (``open``, ``recovered`` or ``closed``) and when it recovered."""
    conn.execute(
        update(tickets).where(tickets.c.id == ticket_id).values(status=status, recovered_at=recovered_at)
    )


def close(conn: Connection, ticket_id: int, at: datetime | None = None) -> None:
    """End a ticket (status ``closed``); its ``recovered_at`` stays as the record of the recovery."""
    values: dict[str, Any] = {"status": "closed", "update_due": None, "sla_state": sla.SLA_NONE}
    if at is not None:
        values["closed_at"] = at
    conn.execute(update(tickets).where(tickets.c.id == ticket_id).values(**values))


def _with_entries(conn: Connection, rows: Sequence[Row[Any]]) -> list[dict[str, Any]]:
    if not rows:
        return []
    ids = [row.id for row in rows]
    query = (
        select(ticket_entries)
        .where(ticket_entries.c.ticket_id.in_(ids))
        .order_by(ticket_entries.c.at, ticket_entries.c.id)
    )
    entries: dict[int, list[dict[str, Any]]] = {ticket_id: [] for ticket_id in ids}
    for entry in conn.execute(query):
        entries[entry.ticket_id].append(
            {
                "at": entry.at,
                "kind": entry.kind,
                "text": entry.text,
                "by": entry.by,
                "sla_state": entry.sla_state,
            }
        )
    breaches: dict[int, list[dict[str, Any]]] = {ticket_id: [] for ticket_id in ids}
    found = select(sla_breaches).where(sla_breaches.c.ticket_id.in_(ids)).order_by(sla_breaches.c.id)
    for breach in conn.execute(found):
        breaches[breach.ticket_id].append(
            {"deadline": breach.deadline, "due": breach.due, "detected_at": breach.detected_at}
        )
    result = []
    for row in rows:
        item = dict(row._mapping)
        item.pop("id")
        item["entries"] = entries[row.id]
        item["breaches"] = breaches[row.id]
        result.append(item)
    return result


def list_tickets(conn: Connection) -> list[dict[str, Any]]:
    """Every ticket, newest first, each with its ``entries`` timeline and ``evidence``."""
    rows = conn.execute(select(tickets).order_by(tickets.c.opened_at.desc(), tickets.c.id.desc())).all()
    return _with_entries(conn, rows)


def get_ticket(conn: Connection, number: str) -> dict[str, Any] | None:
    """One ticket by number, with entries, or None."""
    row = conn.execute(select(tickets).where(tickets.c.number == number)).first()
    if row is None:
        return None
    return _with_entries(conn, [row])[0]


# -- SLA and the engineers' steps -----------------------------------------------------------------


def _row(conn: Connection, number: str) -> Row[Any]:
    row = conn.execute(select(tickets).where(tickets.c.number == number)).first()
    if row is None:
        raise NoSuchTicketError(f"no ticket numbered {number!r}")
    return row


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


def refresh(
    conn: Connection,
    row: Row[Any],
    context: sla.SlaContext,
    now: datetime,
    known: set[tuple[int, str, datetime]] | None = None,
) -> tuple[str, dict[str, datetime]]:
    """Recompute a ticket's deadlines and SLA state, store them if they changed, and record the deadlines
    newly missed. ``known``: the breaches already recorded, (ticket id, deadline, due), if the caller has
    them (saves a query per missed deadline).

    Returns the SLA state and the breaches recorded now, by deadline.
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
    if any(getattr(row, key) != value for key, value in values.items()):
        conn.execute(update(tickets).where(tickets.c.id == row.id).values(**values))
    return state, recorded


def known_breaches(conn: Connection) -> set[tuple[int, str, datetime]]:
    """The breaches recorded for tickets not closed, as (ticket id, deadline, due)."""
    query = (
        select(sla_breaches.c.ticket_id, sla_breaches.c.deadline, sla_breaches.c.due)
        .join(tickets, tickets.c.id == sla_breaches.c.ticket_id)
        .where(tickets.c.status.in_(ACTIVE_STATUSES))
    )
    return {(row.ticket_id, row.deadline, row.due) for row in conn.execute(query)}


def step(  # noqa: PLR0912 (one check per rule of the lifecycle, each with its own message)
    conn: Connection,
    number: str,
    action: str,
    *,
    by: str,
    now: datetime,
    context: sla.SlaContext,
    text: str | None = None,
    deliver_by: datetime | None = None,
) -> None:
    """Move ticket ``number`` along by ``action`` (a key of ``STEPS``); ``TicketError`` says why not."""
    if action not in STEPS:
        raise TicketError(f"unknown step {action!r} (one of {', '.join(STEPS)})")
    if not by.strip():
        raise TicketError("say who takes the step (by)")
    row = _row(conn, number)
    move = STEPS[action]
    if action == "respond" and row.responded_at is not None:
        raise IllegalTransitionError(
            f"ticket {number} was responded to already, at {row.responded_at.isoformat()}"
        )
    if row.status not in move.sources:
        allowed = ", ".join(sorted(move.sources))
        raise IllegalTransitionError(
            f"ticket {number} is {row.status}: {action!r} is allowed only when it is {allowed}"
        )
    if action == "confirm" and row.priority == PRIORITY_LOW:
        raise IllegalTransitionError(f"ticket {number} is Low (not a fault): there is no failure to confirm")
    if deliver_by is not None:
        if action != "confirm":
            raise TicketError("a delivery date the user accepted goes with the confirm step")
        if deliver_by.tzinfo is None:
            raise TicketError("the accepted delivery date needs a time zone (like 2026-12-01T12:00:00+01:00)")
        if deliver_by <= now:
            raise TicketError("the accepted delivery date must be in the future")
    before, _ = refresh(conn, row, context, now)  # a late step: its missed deadline is recorded first
    values: dict[str, Any] = {"last_update_at": now}
    if move.stamp is not None:
        values[move.stamp] = now
    if move.target is not None:
        values["status"] = move.target
    elif action == "respond" and row.status == "open":
        values["status"] = "responded"
    if action == "confirm":
        if row.responded_at is None:
            values["responded_at"] = now
        values["delivery_accepted"] = deliver_by
    conn.execute(update(tickets).where(tickets.c.id == row.id).values(**values))
    add_entry(
        conn, row.id, now, action, text or f"{move.done.capitalize()} by {by}.", by=by, sla_state=before
    )
    refresh(conn, _row(conn, number), context, now)


def note(
    conn: Connection,
    number: str,
    text: str,
    *,
    by: str,
    now: datetime,
    context: sla.SlaContext,
    is_update: bool = False,
) -> None:
    """Add a note to a ticket's timeline; ``is_update``: the reporter was updated, which resets the update
    clock. Allowed in every status."""
    if not text.strip():
        raise TicketError("a note needs some text")
    if not by.strip():
        raise TicketError("say who writes the note (by)")
    row = _row(conn, number)
    before = row.sla_state
    if row.status != "closed":
        before, _ = refresh(conn, row, context, now)
        if is_update:
            conn.execute(update(tickets).where(tickets.c.id == row.id).values(last_update_at=now))
    add_entry(conn, row.id, now, "update" if is_update else "note", text, by=by, sla_state=before)
    if row.status != "closed":
        refresh(conn, _row(conn, number), context, now)


def open_by_hand(
    conn: Connection,
    *,
    site: str,
    summary: str,
    by: str,
    now: datetime,
    context: sla.SlaContext,
    priority: str = PRIORITY_LOW,
    agent: str = "",
    device: str = "",
) -> str:
    """Open a ticket by hand (a question, a configuration change, a consultation: Low by default).

    With ``agent`` and ``device`` the device's serial, contract, model and room are copied from the store.
    Several hand-opened tickets may be open for one device: each gets a cause of its own (``manual:<id>``).
    """
    from collector.store import devices

    if priority not in PRIORITIES:
        raise TicketError(f"unknown priority {priority!r} (one of {', '.join(PRIORITIES)})")
    if not site.strip() or not summary.strip() or not by.strip():
        raise TicketError("a ticket needs a site, a summary and who opens it (by)")
    if device and not agent:
        raise TicketError("give the device's agent too: device ids are unique per agent")
    found = None
    if device:
        found = conn.execute(
            select(devices).where(
                devices.c.site == site, devices.c.agent == agent, devices.c.device == device
            )
        ).first()
        if found is None:
            raise TicketError(f"no device {site}/{agent}/{device} in the store")
    times = sla.TicketTimes(priority, "open", now)
    due = sla.deadlines(context.policy, context.calendars[site], times)
    return open_ticket(
        conn,
        site=site,
        agent=agent,
        device=device,
        model=found.model if found is not None else None,
        serial=found.serial if found is not None else None,
        contract=found.contract if found is not None else None,
        room=found.room if found is not None else None,
        priority=priority,
        cause=f"{CAUSE_MANUAL}:{secrets.token_hex(4)}",
        opened_at=now,
        response_due=due.response_due,
        evidence=found.checks if found is not None else None,
        text=f"Opened by {by}: {summary}",
        opened_by=by,
        summary=summary,
    )


def breach_counts(conn: Connection) -> list[tuple[str, str, int]]:
    """(priority, deadline, how many) of every SLA breach recorded."""
    query = select(sla_breaches.c.priority, sla_breaches.c.deadline, func.count()).group_by(
        sla_breaches.c.priority, sla_breaches.c.deadline
    )
    return [(row[0], row[1], int(row[2])) for row in conn.execute(query)]
