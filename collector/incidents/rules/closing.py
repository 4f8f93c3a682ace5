"""A ``recovered`` ticket whose device has had no fault for ``reopen_window`` seconds is closed, so the next
fault gets a new ticket with fresh deadlines. Not while the device is ``down`` again (not confirmed yet, or
its agent is offline): that fault may still reopen it. Only at the sites this collector decides."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import Connection, or_, select

from collector import tickets
from collector.incidents.evaluation import Context
from collector.incidents.queries import same_device
from collector.store.schema import devices
from collector.store.schema import tickets as ticket_table

log = logging.getLogger(__name__)


class CloseRecovered:
    def apply(self, conn: Connection, context: Context) -> None:
        reopen = timedelta(seconds=context.rules.reopen_window)
        query = (
            select(ticket_table.c.id, ticket_table.c.number, ticket_table.c.site)
            .outerjoin(devices, same_device())
            .where(
                ticket_table.c.status == "recovered",
                ticket_table.c.recovered_at.is_not(None),
                ticket_table.c.recovered_at <= context.now - reopen,
                or_(devices.c.state.is_(None), devices.c.state != "down"),
            )
        )
        hours = reopen.total_seconds() / 3600
        for row in conn.execute(query).all():
            if not context.owns(row.site):
                continue  # another collector decides this site
            if not tickets.close(conn, row.id, context.now, sources=("recovered",)):
                continue  # reopened or closed meanwhile by another writer
            tickets.add_entry(
                conn, row.id, context.now, "closed", f"No fault for {hours:g} h after recovery."
            )
            context.done.closed.append(row.number)
            log.info("ticket %s closed: no fault for %g h after recovery", row.number, hours)
