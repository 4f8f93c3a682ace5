"""Tickets as rows: numbers, opening one with its first entry, status changes, timeline entries, reading.

Every function takes a connection inside the caller's transaction, so a ticket and its first entry are
written together or not at all.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from collector.sla import terms as sla
from collector.store import incident_queue
from collector.store.database import upsert_ignore
from collector.store.schema import ACTIVE_STATUSES, outbox, sla_breaches, ticket_entries, tickets

PRIORITY_CRITICAL = "critical"
PRIORITY_HIGH = "high"
PRIORITY_LOW = "low"
PRIORITIES = (PRIORITY_CRITICAL, PRIORITY_HIGH, PRIORITY_LOW)


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
    event_id: int | None = None,
) -> bool:
    """Append one line to a ticket's timeline: when, what, by whom, and the SLA state at that moment.

    The line is also an event for the outbox, in the same transaction: the notifications of a ticket change
    are written with the change or not at all (collector/notify/).

    ``event_id``: the device event the line notes; a ticket notes each event once (a unique key), so a second
    writer noting it adds nothing and gets False.
    """
    values = {
        "ticket_id": ticket_id,
        "at": at,
        "kind": kind,
        "text": text,
        "by": by,
        "sla_state": sla_state,
        "event_id": event_id,
    }
    statement = upsert_ignore(conn, ticket_entries) if event_id is not None else insert(ticket_entries)
    entry_id = conn.execute(statement.values(**values).returning(ticket_entries.c.id)).scalar()
    if entry_id is None:
        return False
    outboxed = {"ticket_id": ticket_id, "entry_id": int(entry_id), "event": event_of(kind), "created_at": at}
    conn.execute(insert(outbox).values(**outboxed))
    return True


#: Timeline entries whose event has another name: a fault back on a recovered ticket, a priority changed.
_EVENTS = {"down-again": "reopened", "silent-again": "reopened", "priority": "priority-changed"}


def event_of(kind: str) -> str:
    """The event a timeline entry of ``kind`` stands for in notifications (``opened``, ``reopened``...)."""
    return _EVENTS.get(kind, kind)


@dataclass(frozen=True)
class Subject:
    """What a ticket is about: one device with the facts the contract asks for (serial, contract number), or a
    whole site (``agent`` and ``device`` empty)."""

    site: str
    agent: str = ""
    device: str = ""
    model: str | None = None
    serial: str | None = None
    contract: str | None = None
    room: str | None = None

    @classmethod
    def of_device(cls, row: Any) -> Subject:
        """From a ``devices`` row."""
        return cls(row.site, row.agent, row.device, row.model, row.serial, row.contract, row.room)


def open_ticket(
    conn: Connection,
    subject: Subject,
    *,
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
            site=subject.site,
            agent=subject.agent,
            device=subject.device,
            model=subject.model,
            serial=subject.serial,
            contract=subject.contract,
            room=subject.room,
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


def _move(conn: Connection, ticket_id: int, sources: Collection[str], values: dict[str, Any]) -> bool:
    """Change the ticket only if its status is still one of ``sources``: whether this call changed it.

    The condition is checked by the database as it writes (PostgreSQL re-checks it on the row once a
    concurrent writer's transaction ends), so of two collectors taking the same step at once only one moves
    the ticket and writes its entry: the other sees False and writes nothing."""
    moved = conn.execute(
        update(tickets).where(tickets.c.id == ticket_id, tickets.c.status.in_(sources)).values(**values)
    ).rowcount
    return bool(moved)


#: The statuses a ticket recovers from: the fault is gone before anyone confirmed it.
RECOVERABLE = ("open", "responded")


def recover(conn: Connection, ticket_id: int, at: datetime, text: str) -> bool:
    """The fault is gone: ``recovered`` (still open for follow-up), with an entry saying so. False (and no
    entry) if the ticket was no longer ``open`` or ``responded``: another writer recovered it first."""
    if not _move(conn, ticket_id, RECOVERABLE, {"status": "recovered", "recovered_at": at}):
        return False
    add_entry(conn, ticket_id, at, "recovered", text)
    return True


def reopen(conn: Connection, ticket: Row[Any], at: datetime, kind: str, text: str) -> bool:
    """A ``recovered`` ticket whose fault is back: open again (``responded`` if someone had responded), with
    an entry of ``kind`` saying why; its deadlines run on from where they were. False (and no entry) if it
    was no longer ``recovered``: another writer reopened or closed it first."""
    status = "open" if ticket.responded_at is None else "responded"
    if not _move(conn, ticket.id, ("recovered",), {"status": status, "recovered_at": None}):
        return False
    add_entry(conn, ticket.id, at, kind, text)
    return True


def close(
    conn: Connection,
    ticket_id: int,
    at: datetime | None = None,
    *,
    sources: Collection[str] = ACTIVE_STATUSES,
) -> bool:
    """End a ticket (status ``closed``) if its status is one of ``sources``; its ``recovered_at`` stays as
    the record of the recovery. False if it was not (closed already, or moved on by another writer)."""
    values: dict[str, Any] = {"status": "closed", "update_due": None, "sla_state": sla.SLA_NONE}
    if at is not None:
        values["closed_at"] = at
    if not _move(conn, ticket_id, sources, values):
        return False
    touch_device(conn, ticket_id)
    return True


def touch_device(conn: Connection, ticket_id: int) -> None:
    """A device ticket's status changed: the incident engine looks at its device again (a device whose
    ticket is closed may need a new one)."""
    row = conn.execute(
        select(tickets.c.site, tickets.c.agent, tickets.c.device).where(tickets.c.id == ticket_id)
    ).first()
    if row is not None and row.device:
        incident_queue.touch(conn, [(row.site, row.agent, row.device)])


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
