"""Each new ``reboot`` and ``firmware-changed`` event of a device goes on its active tickets' timelines, as
evidence for the verification. Events stored before the engine started are not noted.

Only the events of the sites this collector decides (``context.owns``). An event of another collector's
site is kept for ``TAKEOVER_WINDOW``: if its site becomes this collector's meanwhile (its holder died), it is
noted then; a ticket notes each event once (a unique key), so a note the old holder wrote before it stopped
stays the only one, even if both note it at the same moment.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from collector import tickets
from collector.incidents.evaluation import Context
from collector.store.schema import ACTIVE_STATUSES, events
from collector.store.schema import tickets as ticket_table

#: Device events added to the timeline of the device's active tickets.
NOTED_EVENTS = frozenset({"reboot", "firmware-changed"})
#: How long an event of another collector's site waits to be noted here after a takeover: well past the
#: longest takeover (``1.33 x cluster.lease_seconds``, at most 600 s).
TAKEOVER_WINDOW = timedelta(minutes=15)


class NoteEvents:
    def __init__(self) -> None:
        self._cursor: int | None = None  # the last event id looked at
        self._others: list[Any] = []  # events of other collectors' sites, oldest first

    def apply(self, conn: Connection, context: Context) -> None:
        if self._cursor is None:
            self._cursor = int(conn.execute(select(func.max(events.c.id))).scalar() or 0)
            return
        rows = conn.execute(
            select(
                events.c.id,
                events.c.site,
                events.c.agent,
                events.c.device,
                events.c.type,
                events.c.body,
                events.c.received_at,
            )
            .where(events.c.id > self._cursor)
            .order_by(events.c.id)
        ).all()
        if rows:
            self._cursor = max(self._cursor, rows[-1].id)
        waiting, self._others = self._others, []
        for row in waiting:
            if context.owns(row.site):
                _note(conn, context, row)
            elif context.now - row.received_at < TAKEOVER_WINDOW:
                self._others.append(row)
        for row in rows:
            if row.type not in NOTED_EVENTS or row.device is None:
                continue
            if context.owns(row.site):
                _note(conn, context, row)
            else:
                self._others.append(row)


def _note(conn: Connection, context: Context, row: Any) -> None:
    body = row.body if isinstance(row.body, dict) else {}
    detail = body.get("reason")
    text = f"Event {row.type} of device {row.device}" + (f": {detail}" if isinstance(detail, str) else ".")
    query = select(ticket_table.c.id).where(
        ticket_table.c.site == row.site,
        ticket_table.c.agent == row.agent,
        ticket_table.c.device == row.device,
        ticket_table.c.status.in_(ACTIVE_STATUSES),
    )
    for ticket_id in conn.execute(query).scalars().all():
        # Once per ticket and event (a unique key): a note the old holder wrote stays the only one.
        tickets.add_entry(conn, ticket_id, context.now, row.type, text, event_id=row.id)
