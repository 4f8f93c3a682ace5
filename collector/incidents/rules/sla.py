"""Active tickets' deadlines kept up to date: a deadline newly missed is recorded once (entry ``sla-breach``),
a ticket entering the warning time gets an ``sla-warning`` entry, and the gauges follow.

Only the tickets of the sites this collector decides (``context.owns``); a breach is recorded once by the
unique key of ``sla_breaches``, a warning once by the conditional write of the SLA state (``refresh``).

Driven by due times, not by reading every ticket: a ticket's SLA state changes only when a running deadline
comes within the warning time or passes, or when the ticket itself changes. People's steps refresh the
ticket themselves (``tickets.step``); the engine's own (recovered, reopened) are in ``context.done``. So an
evaluation reads only the tickets whose stored deadlines are near or past, those in warning or breached, and
those the rules before it moved. Every ``SWEEP`` (and at the first evaluation) it reads every active ticket
anyway: a safety net for a change nothing told it of (a new SLA policy after a restart, an evaluation that
failed between two rules).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, or_, select

from collector import tickets
from collector.incidents.evaluation import Context
from collector.sla.terms import DELIVERY_STATUSES, SLA_BREACHED, SLA_WARNING
from collector.store.schema import ACTIVE_STATUSES
from collector.store.schema import tickets as ticket_table

log = logging.getLogger(__name__)

#: How often every active ticket is read anyway, whatever its stored deadlines say.
SWEEP = timedelta(minutes=10)


class SlaDeadlines:
    def __init__(self) -> None:
        self._swept_at: datetime | None = None  # when every active ticket was last read

    def apply(self, conn: Connection, context: Context) -> None:
        now = context.now
        query = select(ticket_table).where(ticket_table.c.status.in_(ACTIVE_STATUSES))
        sweep = self._swept_at is None or not self._swept_at <= now < self._swept_at + SWEEP
        if sweep:
            self._swept_at = now
        else:
            query = query.where(_may_change(context))
        rows = [row for row in conn.execute(query).all() if context.owns(row.site)]
        context.done.sla_read = len(rows)
        known = tickets.known_breaches(conn, None if sweep else [row.id for row in rows])
        for row in rows:
            state, recorded, moved = tickets.refresh(conn, row, context.sla, now, known)
            for deadline, due in recorded.items():
                context.done.breached.append((row.number, deadline))
                text = f"SLA breached: the {deadline} deadline was {due.isoformat()}."
                tickets.add_entry(conn, row.id, now, "sla-breach", text, sla_state=state)
                log.warning("ticket %s: %s", row.number, text)
            if state == "warning" and moved:  # not ``moved``: unchanged, or another writer noted it first
                context.done.warned.append(row.number)
                text = "SLA warning: a deadline is less than the warning time away."
                tickets.add_entry(conn, row.id, now, "sla-warning", text, sla_state=state)
                log.info("ticket %s: %s", row.number, text)
        context.publish_sla(conn)


def _may_change(context: Context) -> Any:
    """Tickets whose SLA state may change now: a running deadline (as ``sla.running`` counts them) within the
    warning time or past, in warning or breached already, no state yet, or moved by a rule before."""
    t = ticket_table.c
    soon = context.now + context.sla.policy.warn_before
    conditions = [
        t.sla_state.is_(None),
        t.sla_state.in_((SLA_WARNING, SLA_BREACHED)),
        and_(t.responded_at.is_(None), t.status.in_(("open", "recovered")), t.response_due <= soon),
        t.update_due <= soon,
        and_(t.status.in_(sorted(DELIVERY_STATUSES)), t.delivery_due <= soon),
        and_(t.status == "delivered", t.return_due <= soon),
    ]
    moved = [*context.done.recovered, *context.done.reopened]
    if moved:
        conditions.append(t.number.in_(moved))
    return or_(*conditions)
