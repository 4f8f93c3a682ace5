"""The ticket board's rows: tickets filtered, the open ones by their next deadline (the one that runs out
first), the closed ones latest first, one page at a time.

Sorting needs every matching ticket's deadlines, not its timeline: the board reads the few columns it sorts
by for all of them, then the whole row (evidence, the device's name) for one page only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, and_, select

from collector.store.schema import devices, tickets

#: Tickets on one page of the board; the filters and further pages reach the rest.
PAGE_SIZE = 100
PRIORITY_RANK = {"critical": 0, "high": 1, "low": 2}

Which = Literal["open", "closed", "all"]

_SORT_COLUMNS = (
    tickets.c.id,
    tickets.c.site,
    tickets.c.agent,
    tickets.c.device,
    tickets.c.contract,
    tickets.c.priority,
    tickets.c.status,
    tickets.c.response_due,
    tickets.c.responded_at,
    tickets.c.update_due,
    tickets.c.delivery_due,
    tickets.c.delivered_at,
    tickets.c.return_due,
    tickets.c.returned_at,
    tickets.c.closed_at,
)


@dataclass(frozen=True)
class BoardFilter:
    """What the board shows; None is any."""

    which: Which = "open"
    site: str | None = None
    priority: str | None = None
    status: str | None = None


@dataclass(frozen=True)
class BoardPage:
    rows: list[dict[str, Any]]
    total: int
    page: int
    pages: int


def next_due(ticket: Mapping[str, Any]) -> tuple[str, datetime] | None:
    """The deadline of ``ticket`` that runs out first, and its name; None when nothing is due."""
    if ticket["status"] == "closed":
        return None
    pending = {
        "response": ticket["response_due"] if ticket["responded_at"] is None else None,
        "update": ticket["update_due"],
        "delivery": ticket["delivery_due"] if ticket["delivered_at"] is None else None,
        "return": ticket["return_due"] if ticket["returned_at"] is None else None,
    }
    due = [(name, at) for name, at in pending.items() if at is not None]
    return min(due, key=lambda item: item[1]) if due else None


def _order(ticket: Mapping[str, Any]) -> tuple[Any, ...]:
    if ticket["status"] == "closed":
        closed = ticket["closed_at"]
        return (2, -(closed.timestamp() if closed is not None else 0.0), -ticket["id"])
    due = next_due(ticket)
    rank = PRIORITY_RANK.get(ticket["priority"], 9)
    if due is None:
        return (1, 0.0, rank, ticket["id"])
    return (0, due[1].timestamp(), rank, ticket["id"])


def board(
    conn: Connection,
    chosen: BoardFilter,
    *,
    visible: Callable[[Mapping[str, Any]], bool] | None = None,
    page: int = 1,
    page_size: int = PAGE_SIZE,
) -> BoardPage:
    """One page of the board: open tickets by next deadline (none due last), then closed ones, latest first.
    ``visible`` keeps only the tickets it accepts (a customer's scope)."""
    query = select(*_SORT_COLUMNS)
    if chosen.which == "open":
        query = query.where(tickets.c.status != "closed")
    elif chosen.which == "closed":
        query = query.where(tickets.c.status == "closed")
    if chosen.site is not None:
        query = query.where(tickets.c.site == chosen.site)
    if chosen.priority is not None:
        query = query.where(tickets.c.priority == chosen.priority)
    if chosen.status is not None:
        query = query.where(tickets.c.status == chosen.status)
    found: list[Mapping[str, Any]] = [dict(row._mapping) for row in conn.execute(query)]
    if visible is not None:
        found = [row for row in found if visible(row)]
    found.sort(key=_order)
    pages = max(1, -(-len(found) // page_size))
    page = min(max(page, 1), pages)
    chosen_ids = [row["id"] for row in found[(page - 1) * page_size : page * page_size]]
    return BoardPage(_full_rows(conn, chosen_ids), len(found), page, pages)


def _full_rows(conn: Connection, ids: list[int]) -> list[dict[str, Any]]:
    """The tickets ``ids`` in that order, whole, with their device's reported name."""
    if not ids:
        return []
    query = (
        select(tickets, devices.c.name)
        .select_from(
            tickets.outerjoin(
                devices,
                and_(
                    devices.c.site == tickets.c.site,
                    devices.c.agent == tickets.c.agent,
                    devices.c.device == tickets.c.device,
                ),
            )
        )
        .where(tickets.c.id.in_(ids))
    )
    by_id = {row.id: dict(row._mapping) for row in conn.execute(query)}
    rows = []
    for ticket_id in ids:
        row = by_id[ticket_id]
        due = next_due(row)
        row["next_deadline"], row["next_due"] = due if due is not None else (None, None)
        rows.append(row)
    return rows


def ticket_sites(conn: Connection) -> list[str]:
    """The sites that have tickets, for the board's filter."""
    return [row[0] for row in conn.execute(select(tickets.c.site).distinct().order_by(tickets.c.site))]
