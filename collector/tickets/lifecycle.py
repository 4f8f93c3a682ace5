"""What people do to tickets: the lifecycle steps (respond, confirm, ship, ...), notes, and opening by hand.

Each step checks the ticket's status first and says why it is refused (``TicketError`` and its kinds).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, select, update

from collector import audit
from collector.errors import ConflictError, InvalidError, NotFoundError
from collector.sla import terms as sla
from collector.store.schema import CAUSE_MANUAL, devices, tickets
from collector.tickets.deadlines import refresh
from collector.tickets.records import PRIORITIES, PRIORITY_LOW, Subject, add_entry, open_ticket, touch_device


class TicketError(InvalidError):
    """A step refused: bad input; the message says why. Subclasses: unknown ticket, illegal transition."""


class NoSuchTicketError(NotFoundError, TicketError):
    """No ticket has that number."""


class IllegalTransitionError(ConflictError, TicketError):
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


def _row(conn: Connection, number: str) -> Row[Any]:
    row = conn.execute(select(tickets).where(tickets.c.number == number)).first()
    if row is None:
        raise NoSuchTicketError(f"no ticket numbered {number!r}")
    return row


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
    before = refresh(conn, row, context, now).state  # a late step: its missed deadline is recorded first
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
    if "status" in values:
        touch_device(conn, row.id)
    add_entry(
        conn, row.id, now, action, text or f"{move.done.capitalize()} by {by}.", by=by, sla_state=before
    )
    _audit(conn, row, now, f"ticket-{action}", text or move.done, by=by)
    refresh(conn, _row(conn, number), context, now)


#: Where a ticket's priority may still change: before its fault is confirmed (a replacement under way keeps
#: the clock it was confirmed on) and before it ends.
REPRIORITISABLE = frozenset({"open", "responded", "recovered"})


def reprioritise(
    conn: Connection,
    number: str,
    priority: str,
    *,
    by: str,
    now: datetime,
    context: sla.SlaContext,
    text: str | None = None,
) -> None:
    """Give ticket ``number`` another priority: its deadlines follow the new one's terms, from when it opened.

    An entry ``priority`` says from which to which and why (``text``); it is the ``priority-changed`` event of
    notifications. ``TicketError`` says why not: an unknown priority, the one it has, or a status past
    confirmation."""
    if priority not in PRIORITIES:
        raise TicketError(f"unknown priority {priority!r} (one of {', '.join(PRIORITIES)})")
    if not by.strip():
        raise TicketError("say who changes the priority (by)")
    row = _row(conn, number)
    if row.priority == priority:
        raise IllegalTransitionError(f"ticket {number} is {priority} already")
    if row.status not in REPRIORITISABLE:
        allowed = ", ".join(sorted(REPRIORITISABLE))
        raise IllegalTransitionError(
            f"ticket {number} is {row.status}: its priority may change only when it is {allowed}"
        )
    before = refresh(conn, row, context, now).state  # a deadline missed under the old priority stays recorded
    conn.execute(update(tickets).where(tickets.c.id == row.id).values(priority=priority))
    said = f"Priority changed from {row.priority.capitalize()} to {priority.capitalize()} by {by}"
    entry = f"{said}: {text.strip()}" if text and text.strip() else f"{said}."
    add_entry(conn, row.id, now, "priority", entry, by=by, sla_state=before)
    _audit(conn, row, now, "ticket-priority", f"{row.priority} -> {priority}", by=by)
    refresh(conn, _row(conn, number), context, now)


def _audit(conn: Connection, row: Row[Any], now: datetime, event: str, text: str, *, by: str) -> None:
    audit.record(conn, now, event, text, actor=by, site=row.site, agent=row.agent or None, subject=row.number)


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
        before = refresh(conn, row, context, now).state
        if is_update:
            conn.execute(update(tickets).where(tickets.c.id == row.id).values(last_update_at=now))
    add_entry(conn, row.id, now, "update" if is_update else "note", text, by=by, sla_state=before)
    _audit(conn, row, now, "ticket-update" if is_update else "ticket-note", text, by=by)
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
    number = open_ticket(
        conn,
        Subject.of_device(found) if found is not None else Subject(site, agent, device),
        priority=priority,
        cause=f"{CAUSE_MANUAL}:{secrets.token_hex(4)}",
        opened_at=now,
        response_due=due.response_due,
        evidence=found.checks if found is not None else None,
        text=f"Opened by {by}: {summary}",
        opened_by=by,
        summary=summary,
    )
    audit.record(
        conn,
        now,
        "ticket-open",
        f"{priority}: {summary}",
        actor=by,
        site=site,
        agent=agent or None,
        subject=number,
    )
    return number
