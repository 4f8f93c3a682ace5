"""Every active ticket's deadlines kept up to date: a deadline newly missed is recorded once (entry
``sla-breach``), a ticket entering the warning time gets an ``sla-warning`` entry, and the gauges follow.

Only the tickets of the sites this collector decides (``context.owns``); a breach is recorded once by the
unique key of ``sla_breaches``, a warning once by the conditional write of the SLA state (``refresh``)."""

from __future__ import annotations

import logging

from sqlalchemy import Connection, select

from collector import tickets
from collector.incidents.evaluation import Context
from collector.store.schema import ACTIVE_STATUSES
from collector.store.schema import tickets as ticket_table

log = logging.getLogger(__name__)


class SlaDeadlines:
    def apply(self, conn: Connection, context: Context) -> None:
        now = context.now
        rows = conn.execute(select(ticket_table).where(ticket_table.c.status.in_(ACTIVE_STATUSES))).all()
        known = tickets.known_breaches(conn)
        for row in rows:
            if not context.owns(row.site):
                continue  # another collector keeps this site's deadlines
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
