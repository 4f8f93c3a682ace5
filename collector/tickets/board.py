"""The ticket board's rows: tickets filtered, the open ones by their next deadline (the one that runs out
first), the closed ones latest first, one page at a time.

The database sorts (the least of the pending deadlines, computed in the query) and hands back one page of
ids; only those tickets are read whole, with the device's reported name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Connection, and_, case, func, literal, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from collector.store.schema import UTCDateTime, devices, tickets

#: Tickets on one page of the board; the filters and further pages reach the rest.
PAGE_SIZE = 100
PRIORITY_RANK = {"critical": 0, "high": 1, "low": 2}

Which = Literal["open", "closed", "all"]

#: Stands for "nothing due" where the database takes the least of several deadlines.
_NEVER = datetime(9999, 1, 1, tzinfo=UTC)


class _Least(FunctionElement[datetime]):
    """The least of its arguments: ``least()`` in PostgreSQL, the many-argument ``min()`` in SQLite."""

    type = UTCDateTime()
    inherit_cache = True


@compiles(_Least)
def _least(element: _Least, compiler: Any, **kw: Any) -> str:
    return f"least({compiler.process(element.clauses, **kw)})"


@compiles(_Least, "sqlite")
def _least_sqlite(element: _Least, compiler: Any, **kw: Any) -> str:
    return f"min({compiler.process(element.clauses, **kw)})"


def _pending(due: Any, done: Any = None) -> Any:
    never = literal(_NEVER, UTCDateTime())
    return func.coalesce(due if done is None else case((done.is_(None), due)), never)


#: The deadline that runs out first, as ``next_due`` says it, for the database to sort by.
_NEXT_DUE = _Least(
    _pending(tickets.c.response_due, tickets.c.responded_at),
    _pending(tickets.c.update_due),
    _pending(tickets.c.delivery_due, tickets.c.delivered_at),
    _pending(tickets.c.return_due, tickets.c.returned_at),
)
_CLOSED = tickets.c.status == "closed"
_ORDER = (
    case((_CLOSED, 1), else_=0),
    case((_CLOSED, None), else_=_NEXT_DUE),
    case((_CLOSED, func.coalesce(tickets.c.closed_at, tickets.c.opened_at)), else_=None).desc(),
    case(*((tickets.c.priority == name, rank) for name, rank in PRIORITY_RANK.items()), else_=9),
    tickets.c.id,
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
    conditions = []
    if chosen.which == "open":
        conditions.append(tickets.c.status != "closed")
    elif chosen.which == "closed":
        conditions.append(_CLOSED)
    if chosen.site is not None:
        conditions.append(tickets.c.site == chosen.site)
    if chosen.priority is not None:
        conditions.append(tickets.c.priority == chosen.priority)
    if chosen.status is not None:
        conditions.append(tickets.c.status == chosen.status)
    if visible is None:
        total = int(conn.execute(select(func.count()).select_from(tickets).where(*conditions)).scalar_one())
        pages = max(1, -(-total // page_size))
        page = min(max(page, 1), pages)
        query = select(tickets.c.id).where(*conditions).order_by(*_ORDER)
        chosen_ids = list(conn.scalars(query.limit(page_size).offset((page - 1) * page_size)))
        return BoardPage(_full_rows(conn, chosen_ids), total, page, pages)
    # A customer's scope is not a column: every matching ticket is read in order and the scope keeps its own.
    scoped = select(tickets.c.id, tickets.c.site, tickets.c.agent, tickets.c.device, tickets.c.contract)
    rows = conn.execute(scoped.where(*conditions).order_by(*_ORDER))
    found = [row.id for row in rows if visible(dict(row._mapping))]
    pages = max(1, -(-len(found) // page_size))
    page = min(max(page, 1), pages)
    return BoardPage(
        _full_rows(conn, found[(page - 1) * page_size : page * page_size]), len(found), page, pages
    )


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
