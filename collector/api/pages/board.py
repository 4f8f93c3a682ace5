"""``/board``, the ticket board, and ``/tickets/{number}``, one ticket's page.

The board lists open tickets by their next deadline with a live countdown, each time in the site's zone
(UTC on hover), filtered by customer, site, priority, status, open or closed; a page of ``PAGE_SIZE`` at a
time. When ``/live`` says something changed, the page's script fetches the page again and swaps in its live
parts only, so nothing the user opened or is typing is lost. A customer's user sees its own tickets only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from sqlalchemy import select

from collector import tickets
from collector.api.auth import PageReader, TicketNumber, scope
from collector.api.deps import Wired, Wiring
from collector.api.pages.words import cause_words, moment
from collector.errors import NotFoundError
from collector.people import Person, Role, scope_of
from collector.remote import history
from collector.store.schema import ACTIVE_STATUSES, TICKET_STATUSES, bundles, contracts, devices
from collector.tickets.board import BoardFilter, board, ticket_sites

router = APIRouter(include_in_schema=False)

Short = Annotated[str | None, Query(max_length=128)]


def visitor(request: Request, who: Person) -> dict[str, Any]:
    """What every page shows of who is logged in, and the CSRF token its scripts send."""
    return {
        "who": who,
        "csrf": getattr(request.state, "csrf", ""),
        "staff": who.customer is None,
        "engineer": who.customer is None and who.may(Role.ENGINEER),
    }


def at_site(wired: Wiring) -> Callable[..., Markup]:
    """The templates' ``at(value, site, countdown=False)``: a time in ``site``'s zone (``words.moment``)."""

    def at(value: datetime | None, site: str, countdown: bool = False) -> Markup:
        return moment(value, wired.sla.calendars[site], countdown=countdown)

    return at


def _customers(wired: Wiring) -> list[str]:
    with wired.engine.connect() as conn:
        found = conn.execute(select(contracts.c.customer).distinct().order_by(contracts.c.customer))
        return [row[0] for row in found if row[0]]


@router.get("/board", response_class=HTMLResponse)
def ticket_board(
    request: Request,
    wired: Wired,
    who: PageReader,
    *,
    which: Literal["open", "closed", "all"] = "open",
    customer: Short = None,
    site: Short = None,
    priority: Literal["critical", "high", "low", ""] = "",
    status: Short = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    chosen = BoardFilter(
        which=which,
        site=site or None,
        priority=priority or None,
        status=status if status in TICKET_STATUSES else None,
    )
    with wired.engine.connect() as conn:
        seen = scope(conn, who)
        if seen is None and customer:
            seen = scope_of(conn, customer)
        found = board(conn, chosen, visible=seen.has_ticket if seen is not None else None, page=page)
        sites = ticket_sites(conn)
    if seen is not None:
        sites = [name for name in sites if seen.has_site(name)]
    for row in found.rows:
        row["words"] = cause_words(row)
    context: dict[str, Any] = {
        "found": found,
        "chosen": chosen,
        "customer": customer or "",
        "customers": _customers(wired) if who.customer is None else [],
        "sites": sites,
        "statuses": TICKET_STATUSES,
        "at": at_site(wired),
        "query_with": lambda **changes: urlencode(
            {**request.query_params, **{name: str(value) for name, value in changes.items()}}
        ),
        **visitor(request, who),
    }
    return wired.templates.TemplateResponse(
        request, "board.html", context, headers={"Cache-Control": "no-store"}
    )


def _ticket(wired: Wiring, who: Person, number: str) -> dict[str, Any]:
    with wired.engine.connect() as conn:
        found = tickets.get_ticket(conn, number)
        seen = scope(conn, who)
        if found is None or (seen is not None and not seen.has_ticket(found)):
            raise NotFoundError(f"no ticket numbered {number!r}")
        found["name"] = conn.execute(
            select(devices.c.name).where(
                devices.c.site == found["site"],
                devices.c.agent == found["agent"],
                devices.c.device == found["device"],
            )
        ).scalar()
        found["bundles"] = [
            dict(row._mapping)
            for row in conn.execute(select(bundles).where(bundles.c.ticket == number).order_by(bundles.c.id))
        ]
    found["words"] = cause_words(found)
    return found


def _actions(ticket: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The lifecycle steps the ticket's status allows now, and what each does."""
    allowed = []
    for name, move in tickets.STEPS.items():
        if ticket["status"] not in move.sources:
            continue
        if name == "respond" and ticket["responded_at"] is not None:
            continue
        if name == "confirm" and ticket["priority"] == tickets.PRIORITY_LOW:
            continue
        allowed.append((name, move.done))
    return allowed


@router.get("/tickets/{number}", response_class=HTMLResponse)
def ticket_page(
    request: Request,
    number: TicketNumber,
    wired: Wired,
    who: PageReader,
) -> Response:
    """One ticket: deadlines, timeline, evidence, bundles and, for engineers, the steps its status allows."""
    ticket = _ticket(wired, who, number)
    context: dict[str, Any] = {
        "t": ticket,
        "actions": _actions(ticket),
        "active": ticket["status"] in ACTIVE_STATUSES,
        "at": at_site(wired),
        "commands": [],
        "remote": wired.commander is not None,
        **visitor(request, who),
    }
    if context["staff"] and wired.commander is not None:
        context["commands"] = history.list_commands(wired.engine, ticket=number)
    return wired.templates.TemplateResponse(
        request, "ticket.html", context, headers={"Cache-Control": "no-store"}
    )
