"""The outbox in the store: routing new entries into deliveries, claiming what is due, recording outcomes.

Every function takes a connection inside the caller's transaction. Correctness comes from the database: a
delivery is claimed by a conditional update (a lease), so two dispatchers never send the same one at once,
and a delivery exists once per (entry, sink, recipient) by a unique constraint.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, update

from collector import audit
from collector.errors import NotFoundError
from collector.sinks.base import Delivered, Failed, Link, Outcome, Retry
from collector.sinks.settings import RetryConfig, RouteConfig
from collector.sla.terms import Calendars
from collector.store.database import upsert_ignore
from collector.store.schema import contracts, deliveries, outbox, ticket_entries, ticket_links, tickets

PENDING = "pending"
SENT = "sent"
DEAD = "dead"

#: Outbox entries routed per transaction.
ROUTE_BATCH = 500


@dataclass(frozen=True)
class Due:
    """A delivery claimed for one attempt."""

    id: int
    outbox_id: int
    ticket_id: int
    sink: str
    recipient: str
    attempts: int


def route_new(
    conn: Connection,
    routes: list[RouteConfig],
    calendars: Calendars,
    now: datetime,
    contacts: Mapping[str, str],
) -> int:
    """Make the deliveries of outbox entries not routed yet: one per (entry, sink, recipient) that a route
    matches; a route for working hours holds its delivery until they begin on the site's calendar.
    ``contacts`` are the sites' contact addresses from the configuration. Returns how many entries."""
    rows = conn.execute(
        select(
            outbox.c.id,
            outbox.c.ticket_id,
            outbox.c.event,
            outbox.c.created_at,
            ticket_entries.c.by,
            tickets.c.priority,
            tickets.c.site,
            contracts.c.customer,
            contracts.c.contact,
        )
        .join(tickets, tickets.c.id == outbox.c.ticket_id)
        .join(ticket_entries, ticket_entries.c.id == outbox.c.entry_id)
        .outerjoin(contracts, contracts.c.number == tickets.c.contract)
        .where(outbox.c.routed_at.is_(None))
        .order_by(outbox.c.id)
        .limit(ROUTE_BATCH)
    ).all()
    made: list[dict[str, Any]] = []
    for row in rows:
        targets: dict[tuple[str, str], datetime] = {}
        for route in routes:
            if not _matches(route, row):
                continue
            recipient = ""
            if route.to_contact:
                recipient = row.contact or contacts.get(row.site) or ""
                if not recipient:
                    continue  # nobody to write to: that route has nothing to send for this ticket
            when = now
            if route.hours == "working":
                # the first working moment from now on: now itself within working hours
                when = next(calendars[row.site].intervals(now))[0]
            for sink in route.sinks:
                if row.by is not None and row.by.endswith(f" via {sink}"):
                    continue  # it came from that desk: never send it back (desks.via)
                key = (sink, recipient)
                targets[key] = min(targets.get(key, when), when)
        made.extend(
            {
                "outbox_id": row.id,
                "ticket_id": row.ticket_id,
                "sink": sink,
                "recipient": recipient,
                "status": PENDING,
                "attempts": 0,
                "next_attempt_at": when,
            }
            for (sink, recipient), when in targets.items()
        )
    if made:
        conn.execute(upsert_ignore(conn, deliveries), made)
    if rows:
        conn.execute(update(outbox).where(outbox.c.id.in_([row.id for row in rows])).values(routed_at=now))
    return len(rows)


def _matches(route: RouteConfig, row: Any) -> bool:
    return (
        (route.events is None or row.event in route.events)
        and (route.priorities is None or row.priority in route.priorities)
        and (route.sites is None or row.site in route.sites)
        and (route.customers is None or row.customer in route.customers)
    )


def claim_due(
    conn: Connection, sink: str, now: datetime, *, lease: float, owner: str, limit: int = 50
) -> list[Due]:
    """Claim up to ``limit`` deliveries of ``sink`` that are due, each for ``lease`` seconds, for ``owner``.

    Per ticket (and recipient) only the oldest pending delivery is taken: a ticket's events reach a sink in
    the order they happened, and a later one waits while an earlier one is retried.
    """
    seen: set[tuple[int, str]] = set()
    due: list[Due] = []
    after = 0
    # Pending deliveries oldest first, a page at a time: a page of retries not due yet does not hide later
    # ones that are, and a sink with a long queue does not read all of it to send a few.
    while len(due) < limit:
        rows = conn.execute(
            select(deliveries)
            .where(deliveries.c.sink == sink, deliveries.c.status == PENDING, deliveries.c.id > after)
            .order_by(deliveries.c.id)
            .limit(_PAGE)
        ).all()
        for row in rows:
            key = (row.ticket_id, row.recipient)
            if key in seen:
                continue
            seen.add(key)
            if row.next_attempt_at > now or (row.lease_until is not None and row.lease_until > now):
                continue
            if _claim(conn, row.id, now, lease, owner):
                due.append(Due(row.id, row.outbox_id, row.ticket_id, row.sink, row.recipient, row.attempts))
                if len(due) >= limit:
                    break
        if len(rows) < _PAGE:
            break
        after = rows[-1].id
    return due


#: Pending deliveries read at once when looking for those due.
_PAGE = 500


def _claim(conn: Connection, delivery: int, now: datetime, lease: float, owner: str) -> bool:
    """Take the lease of a pending delivery no one holds; False if another dispatcher got it first."""
    claimed = conn.execute(
        update(deliveries)
        .where(
            deliveries.c.id == delivery,
            deliveries.c.status == PENDING,
            or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until <= now),
        )
        .values(lease_until=now + timedelta(seconds=lease), leased_by=owner)
    ).rowcount
    return bool(claimed)


def release(conn: Connection, owner: str) -> int:
    """Free the leases ``owner`` holds: a dispatcher just started holds none, so any it held were taken
    before it was stopped or killed, with their attempts not made or not recorded."""
    query = update(deliveries).where(deliveries.c.leased_by == owner, deliveries.c.lease_until.is_not(None))
    return int(conn.execute(query.values(lease_until=None, leased_by=None)).rowcount)


def backoff(attempts: int, policy: RetryConfig, jitter: random.Random | None = None) -> float:
    """Seconds before attempt ``attempts + 1``: doubling from ``first_delay`` up to ``max_delay``, with full
    jitter in its upper half (so many deliveries failing together do not retry in step)."""
    delay = min(policy.max_delay, policy.first_delay * 2.0 ** max(0, attempts - 1))
    chance: float = (jitter or random).random()
    return delay / 2 + chance * delay / 2


def record(conn: Connection, due: Due, outcome: Outcome, now: datetime, policy: RetryConfig) -> str:
    """Store how an attempt went; the delivery's status after it (``sent``, ``pending`` or ``dead``)."""
    attempts = due.attempts + 1
    where = deliveries.c.id == due.id
    if isinstance(outcome, Delivered):
        conn.execute(
            update(deliveries)
            .where(where)
            .values(
                status=SENT,
                attempts=attempts,
                sent_at=now,
                lease_until=None,
                last_error=None,
                remote_ref=outcome.remote_ref,
            )
        )
        if outcome.link is not None:
            save_link(conn, due.ticket_id, due.sink, outcome.link, now)
        return SENT
    reason = outcome.reason
    if isinstance(outcome, Failed) or attempts >= policy.attempts:
        if isinstance(outcome, Retry):
            reason = f"gave up after {attempts} attempts: {reason}"
        conn.execute(
            update(deliveries)
            .where(where)
            .values(status=DEAD, attempts=attempts, lease_until=None, last_error=reason)
        )
        return DEAD
    assert isinstance(outcome, Retry)
    delay = outcome.after if outcome.after is not None else backoff(attempts, policy)
    conn.execute(
        update(deliveries)
        .where(where)
        .values(
            attempts=attempts,
            lease_until=None,
            last_error=reason,
            next_attempt_at=now + timedelta(seconds=min(delay, policy.max_delay)),
        )
    )
    return PENDING


def save_link(conn: Connection, ticket_id: int, sink: str, link: Link, now: datetime) -> None:
    """Remember the ticket's counterpart at ``sink`` (replacing one known before)."""
    where = and_(ticket_links.c.ticket_id == ticket_id, ticket_links.c.sink == sink)
    values = {"remote_id": link.remote_id, "remote_url": link.remote_url, "cursor": link.cursor}
    if conn.execute(update(ticket_links).where(where).values(**values)).rowcount == 0:
        conn.execute(ticket_links.insert().values(ticket_id=ticket_id, sink=sink, synced_at=now, **values))


def link_of(conn: Connection, ticket_id: int, sink: str) -> Link | None:
    row = conn.execute(
        select(ticket_links).where(ticket_links.c.ticket_id == ticket_id, ticket_links.c.sink == sink)
    ).first()
    return None if row is None else Link(row.remote_id, row.remote_url, row.cursor)


def retry(conn: Connection, now: datetime, ids: Iterable[int] | None = None, *, by: str | None = None) -> int:
    """Send dead deliveries again (those in ``ids``, or all): pending, due now, attempts counted afresh.
    ``NotFoundError`` if an id named is not a dead delivery. Audited as ``by``'s when given."""
    query = update(deliveries).where(deliveries.c.status == DEAD)
    wanted = None if ids is None else sorted(set(ids))
    if wanted is not None:
        found = set(
            conn.execute(
                select(deliveries.c.id).where(deliveries.c.id.in_(wanted), deliveries.c.status == DEAD)
            ).scalars()
        )
        missing = [str(item) for item in wanted if item not in found]
        if missing:
            raise NotFoundError(f"no dead delivery numbered {', '.join(missing)}")
        query = query.where(deliveries.c.id.in_(wanted))
    values = {"status": PENDING, "attempts": 0, "next_attempt_at": now, "lease_until": None}
    count = int(conn.execute(query.values(**values)).rowcount)
    if by is not None:
        named = "all dead deliveries" if wanted is None else f"deliveries {', '.join(map(str, wanted))}"
        audit.record(conn, now, "outbox-retry", f"{named}: {count} sent again", actor=by)
    return count


def list_deliveries(conn: Connection, *, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """The latest deliveries, newest first, with their ticket number and event."""
    query = (
        select(
            deliveries.c.id,
            tickets.c.number.label("ticket"),
            outbox.c.event,
            deliveries.c.sink,
            deliveries.c.recipient,
            deliveries.c.status,
            deliveries.c.attempts,
            deliveries.c.next_attempt_at,
            deliveries.c.sent_at,
            deliveries.c.last_error,
            outbox.c.created_at,
        )
        .join(outbox, outbox.c.id == deliveries.c.outbox_id)
        .join(tickets, tickets.c.id == deliveries.c.ticket_id)
        .order_by(deliveries.c.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(deliveries.c.status == status)
    return [dict(row._mapping) for row in conn.execute(query)]


def counts(conn: Connection) -> dict[tuple[str, str], int]:
    """How many deliveries each sink has in each status."""
    query = select(deliveries.c.sink, deliveries.c.status, func.count()).group_by(
        deliveries.c.sink, deliveries.c.status
    )
    return {(row[0], row[1]): int(row[2]) for row in conn.execute(query)}
