"""Each new ``reboot`` and ``firmware-changed`` event of a device goes on its active tickets' timelines, as
evidence for the verification. Events stored before the engine started are not noted."""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from collector import tickets
from collector.incidents.evaluation import Context
from collector.store.schema import ACTIVE_STATUSES, events
from collector.store.schema import tickets as ticket_table

#: Device events added to the timeline of the device's active tickets.
NOTED_EVENTS = frozenset({"reboot", "firmware-changed"})


class NoteEvents:
    def __init__(self) -> None:
        self._cursor: int | None = None  # the last event id looked at

    def apply(self, conn: Connection, context: Context) -> None:
        if self._cursor is None:
            self._cursor = int(conn.execute(select(func.max(events.c.id))).scalar() or 0)
            return
        rows = conn.execute(
            select(events.c.id, events.c.site, events.c.agent, events.c.device, events.c.type, events.c.body)
            .where(events.c.id > self._cursor)
            .order_by(events.c.id)
        ).all()
        for row in rows:
            self._cursor = max(self._cursor, row.id)
            if row.type not in NOTED_EVENTS or row.device is None:
                continue
            body = row.body if isinstance(row.body, dict) else {}
            detail = body.get("reason")
            text = f"Event {row.type} of device {row.device}" + (
                f": {detail}" if isinstance(detail, str) else "."
            )
            query = select(ticket_table.c.id).where(
                ticket_table.c.site == row.site,
                ticket_table.c.agent == row.agent,
                ticket_table.c.device == row.device,
                ticket_table.c.status.in_(ACTIVE_STATUSES),
            )
            for ticket_id in conn.execute(query).scalars():
                tickets.add_entry(conn, ticket_id, context.now, row.type, text)
