"""A device retired from its agent's inventory: its open or recovered ticket is closed, since nobody watches
the device any more and nothing would ever recover or close that ticket. Only at the sites this collector
decides."""

from __future__ import annotations

import logging

from sqlalchemy import Connection

from collector import tickets
from collector.incidents.evaluation import Context
from collector.incidents.queries import tickets_with_devices
from collector.store.schema import ACTIVE_STATUSES, devices
from collector.store.schema import tickets as ticket_table

log = logging.getLogger(__name__)

#: The ``closed`` entry of a ticket whose device was retired.
RETIRED_TEXT = "Device removed from the agent's inventory."


class CloseRetired:
    def apply(self, conn: Connection, context: Context) -> None:
        query = tickets_with_devices(
            ticket_table.c.status.in_(ACTIVE_STATUSES),
            devices.c.retired_at.is_not(None),
        )
        for row in conn.execute(query).all():
            if not context.owns(row.site):
                continue  # another collector decides this site
            if not tickets.close(conn, row.id, context.now):
                continue  # closed meanwhile by another writer
            tickets.add_entry(conn, row.id, context.now, "closed", RETIRED_TEXT)
            context.done.closed.append(row.number)
            log.info(
                "ticket %s closed: device %s/%s/%s removed from the agent's inventory",
                row.number,
                row.site,
                row.agent,
                row.device,
            )
