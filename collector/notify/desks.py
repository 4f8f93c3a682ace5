"""Back from the desk: engineers who work in a service desk (RT, Jira, ServiceNow) move hezo's ticket there.

For every ticket still open that has a counterpart at a desk sink, hezo asks the desk, at most once per
``notify.follow_every`` seconds, what changed since the last look: each new comment becomes a note on the
hezo ticket (``by`` "<author> via <sink>", which is never sent back to that desk), and a counterpart resolved
there resolves the hezo ticket. A desk that cannot be reached is asked again at the next round.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, update

from collector import tickets
from collector.errors import CollectorError
from collector.sinks.base import Desk, DeskChange, Link, Retry, Sink
from collector.sla.terms import SlaContext
from collector.store.database import utcnow
from collector.store.schema import ACTIVE_STATUSES, ticket_links
from collector.store.schema import tickets as ticket_table

log = logging.getLogger(__name__)

#: Steps after which a ticket cannot be resolved any more (its replacement is under way or done).
_RESOLVABLE = frozenset({"open", "responded", "recovered"})


def via(author: str, sink: str) -> str:
    """Who wrote an entry that came from a desk: ``"<author> via <sink>"``."""
    return f"{author or 'someone'} via {sink}"[:128]


def from_desk(by: str | None, sink: str) -> bool:
    """Whether an entry by ``by`` came from the desk ``sink`` (and so must not go back to it)."""
    return by is not None and by.endswith(f" via {sink}")


def desks_of(sinks: dict[str, Sink]) -> dict[str, Desk]:
    """The sinks that are desks hezo follows back."""
    found: dict[str, Desk] = {}
    for name, sink in sinks.items():
        if callable(getattr(sink, "changes", None)):
            found[name] = sink  # type: ignore[assignment]  # it has what a Desk has
    return found


class Follower:
    """Reads each desk's linked tickets back into hezo; ``follow()`` does one round."""

    def __init__(
        self,
        engine: Engine,
        desks: dict[str, Desk],
        context: SlaContext,
        *,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.desks = desks
        self.context = context
        self._now = now

    def follow(self) -> int:
        """One round over every desk; how many changes were applied."""
        applied = 0
        for name, desk in self.desks.items():
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(ticket_links, ticket_table.c.number, ticket_table.c.status)
                    .join(ticket_table, ticket_table.c.id == ticket_links.c.ticket_id)
                    .where(ticket_links.c.sink == name, ticket_table.c.status.in_(ACTIVE_STATUSES))
                    .order_by(ticket_links.c.ticket_id)
                ).all()
            for row in rows:
                change = desk.changes(Link(row.remote_id, row.remote_url, row.cursor))
                if isinstance(change, Retry):
                    log.info("desk %s: cannot read %s now (%s)", name, row.remote_id, change.reason)
                    break  # the desk is away: the rest of its tickets wait for the next round
                applied += self._apply(name, row, change)
        return applied

    def _apply(self, sink: str, row: Any, change: DeskChange) -> int:
        now = self._now()
        applied = 0
        with self.engine.begin() as conn:
            for author, text in change.comments:
                tickets.note(conn, row.number, text, by=via(author, sink), now=now, context=self.context)
                applied += 1
            if change.resolved_by is not None and row.status in _RESOLVABLE:
                try:
                    tickets.step(
                        conn,
                        row.number,
                        "resolve",
                        by=via(change.resolved_by, sink),
                        now=now,
                        context=self.context,
                        text=f"Resolved in {sink} ({row.remote_id}) by {change.resolved_by}.",
                    )
                    applied += 1
                except CollectorError as exc:  # changed by someone else meanwhile: say so, do not stop
                    log.info("ticket %s: not resolved from %s: %s", row.number, sink, exc)
            conn.execute(
                update(ticket_links)
                .where(ticket_links.c.ticket_id == row.ticket_id, ticket_links.c.sink == sink)
                .values(cursor=change.cursor or row.cursor, remote_status=change.status, synced_at=now)
            )
        return applied
