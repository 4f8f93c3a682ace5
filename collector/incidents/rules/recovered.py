"""A device ``up`` again: its ``open`` (or ``responded``) Critical ticket becomes ``recovered``, kept open for
follow-up; the fault coming back reopens it (``device_down``). Only at the sites this collector decides."""

from __future__ import annotations

import logging

from sqlalchemy import Connection

from collector import tickets
from collector.incidents.evaluation import Context
from collector.incidents.queries import tickets_with_devices
from collector.store.schema import CAUSE_DEVICE_DOWN, devices
from collector.store.schema import tickets as ticket_table

log = logging.getLogger(__name__)


class RecoverUp:
    def apply(self, conn: Connection, context: Context) -> None:
        query = tickets_with_devices(
            ticket_table.c.status.in_(("open", "responded")),
            ticket_table.c.cause == CAUSE_DEVICE_DOWN,
            devices.c.state == "up",
        )
        for row in conn.execute(query).all():
            if not context.owns(row.site):
                continue  # another collector decides this site
            if not tickets.recover(conn, row.id, context.now, f"Device {row.device} is up again."):
                continue  # recovered meanwhile by another writer: its entry is written already
            context.done.recovered.append(row.number)
            log.info(
                "ticket %s recovered: device %s/%s/%s is up", row.number, row.site, row.agent, row.device
            )
