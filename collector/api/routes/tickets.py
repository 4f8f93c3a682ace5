"""``/api/tickets``: list and read tickets, open one by hand, add notes, change a priority, take the
lifecycle steps (one operation per step), and the diagnostics gathered for one (docs/incidents.md). A
refused step answers 409, an unknown ticket 404, bad fields 422, each with the reason. Changes are the
authenticated engineer's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from collector import tickets
from collector.api.auth import Engineer, Reader, Staff, TicketNumber, scope, ticket_visible
from collector.api.deps import Wired, Wiring
from collector.api.errors import answers
from collector.api.routes.bundles import bundle_dict
from collector.errors import NotFoundError
from collector.remote import history
from collector.store import queries
from collector.store.schema import bundles

router = APIRouter(tags=["tickets"])

#: Accepted from older clients and ignored: the change is recorded as the authenticated user's.
BY_IGNORED = Field(
    default=None,
    max_length=128,
    deprecated=True,
    description="ignored: the change is recorded as the authenticated user's",
)

Priority = Literal["critical", "high", "low"]


class StepBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: str | None = BY_IGNORED
    text: str | None = Field(default=None, max_length=10000, description="the timeline entry's text")


class ConfirmBody(StepBody):
    deliver_by: datetime | None = Field(
        default=None, description="a later delivery date the user accepted (with its time zone)"
    )


class NoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: str | None = BY_IGNORED
    text: str = Field(min_length=1, max_length=10000)
    update: bool = Field(default=False, description="the reporter was updated: resets the update clock")


class PriorityBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    priority: Priority
    text: str | None = Field(default=None, max_length=10000, description="why: said in the timeline entry")


class OpenBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: str = Field(min_length=1, max_length=64)
    agent: str = Field(default="", max_length=64)
    device: str = Field(default="", max_length=64)
    priority: Priority = "low"
    summary: str = Field(min_length=1, max_length=10000)
    by: str | None = BY_IGNORED


def _ticket(wired: Wiring, number: str, status_code: int = 200) -> JSONResponse:
    with wired.engine.connect() as conn:
        found = tickets.get_ticket(conn, number)
    if found is None:
        raise NotFoundError(f"no ticket numbered {number!r}")
    return JSONResponse(queries.jsonable(found), status_code=status_code)


@router.get("/api/tickets", responses=answers(401, 403))
def list_tickets(wired: Wired, who: Reader) -> JSONResponse:
    """Every ticket, newest first (a customer's user: its own)."""
    with wired.engine.connect() as conn:
        seen = scope(conn, who)
        rows = tickets.list_tickets(conn)
    if seen is not None:
        rows = [row for row in rows if seen.has_ticket(row)]
    return JSONResponse(queries.jsonable(rows))


@router.get(
    "/api/tickets/{number}", responses=answers(401, 403, 404, 422), dependencies=[Depends(ticket_visible)]
)
def get_ticket(number: TicketNumber, wired: Wired, who: Reader) -> JSONResponse:
    return _ticket(wired, number)


@router.post("/api/tickets", status_code=201, responses=answers(401, 403, 422))
def open_ticket(body: OpenBody, wired: Wired, who: Engineer) -> JSONResponse:
    """Open a ticket by hand (Low by default), as the authenticated engineer."""
    with wired.engine.begin() as conn:
        number = tickets.open_by_hand(
            conn,
            site=body.site,
            agent=body.agent,
            device=body.device,
            priority=body.priority,
            summary=body.summary,
            by=who.actor,
            now=wired.now(),
            context=wired.sla,
        )
    return _ticket(wired, number, 201)


@router.post(
    "/api/tickets/{number}/notes",
    responses=answers(401, 403, 404, 422),
    dependencies=[Depends(ticket_visible)],
)
def add_note(number: TicketNumber, body: NoteBody, wired: Wired, who: Engineer) -> JSONResponse:
    with wired.engine.begin() as conn:
        tickets.note(
            conn, number, body.text, by=who.actor, now=wired.now(), context=wired.sla, is_update=body.update
        )
    return _ticket(wired, number)


@router.post(
    "/api/tickets/{number}/priority",
    responses=answers(401, 403, 404, 409, 422),
    dependencies=[Depends(ticket_visible)],
)
def change_priority(number: TicketNumber, body: PriorityBody, wired: Wired, who: Engineer) -> JSONResponse:
    """Give the ticket another priority; its deadlines follow the new one's terms. Allowed before the fault
    is confirmed (open, responded, recovered); 409 otherwise, or when it has that priority already."""
    with wired.engine.begin() as conn:
        tickets.reprioritise(
            conn, number, body.priority, by=who.actor, now=wired.now(), context=wired.sla, text=body.text
        )
    return _ticket(wired, number)


@router.get(
    "/api/tickets/{number}/diagnostics",
    responses=answers(401, 403, 404, 422),
    dependencies=[Depends(ticket_visible)],
)
def ticket_diagnostics(number: TicketNumber, wired: Wired, who: Staff) -> JSONResponse:
    """The commands sent for the ticket and the log bundles they brought."""
    with wired.engine.connect() as conn:
        rows = conn.execute(select(bundles).where(bundles.c.ticket == number)).all()
    found = {
        "commands": history.list_commands(wired.engine, ticket=number),
        "bundles": [bundle_dict(row) for row in rows],
    }
    return JSONResponse(queries.jsonable(found))


def _take(wired: Wiring, number: str, action: str, who_actor: str, body: StepBody) -> JSONResponse:
    with wired.engine.begin() as conn:
        tickets.step(
            conn,
            number,
            action,
            by=who_actor,
            now=wired.now(),
            context=wired.sla,
            text=body.text,
            deliver_by=body.deliver_by if isinstance(body, ConfirmBody) else None,
        )
    return _ticket(wired, number)


def _step_route(action: str) -> Callable[..., JSONResponse]:
    move = tickets.STEPS[action]
    if action == "confirm":

        def confirm(number: TicketNumber, body: ConfirmBody, wired: Wired, who: Engineer) -> JSONResponse:
            return _take(wired, number, action, who.actor, body)

        taken: Callable[..., JSONResponse] = confirm
    else:

        def step(number: TicketNumber, body: StepBody, wired: Wired, who: Engineer) -> JSONResponse:
            return _take(wired, number, action, who.actor, body)

        taken = step
    taken.__name__ = f"ticket_{action}"
    taken.__doc__ = (
        f"The ticket is {move.done}: allowed when it is {', '.join(sorted(move.sources))}; 409 otherwise."
    )
    return taken


for _action in tickets.STEPS:
    router.post(
        f"/api/tickets/{{number}}/{_action}",
        responses=answers(401, 403, 404, 409, 422),
        dependencies=[Depends(ticket_visible)],
        operation_id=f"ticket_{_action}",
    )(_step_route(_action))
