"""``/api/tickets``: list and read tickets, open one by hand, add notes, take the lifecycle steps, and the
diagnostics gathered for one (docs/incidents.md). A refused step answers 409, an unknown ticket 404, bad
fields 422, each with the reason."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from collector import tickets
from collector.api.deps import Wired, Wiring
from collector.api.routes.bundles import bundle_dict
from collector.errors import NotFoundError
from collector.remote import history
from collector.store import queries
from collector.store.schema import bundles

router = APIRouter(tags=["tickets"])


class StepBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: str = Field(min_length=1, max_length=128)
    text: str | None = Field(default=None, max_length=10000)
    deliver_by: datetime | None = None


class NoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: str = Field(min_length=1, max_length=128)
    text: str = Field(min_length=1, max_length=10000)
    update: bool = False


class OpenBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: str = Field(min_length=1, max_length=64)
    agent: str = Field(default="", max_length=64)
    device: str = Field(default="", max_length=64)
    priority: Literal["critical", "high", "low"] = "low"
    summary: str = Field(min_length=1, max_length=10000)
    by: str = Field(min_length=1, max_length=128)


def _ticket(wired: Wiring, number: str, status_code: int = 200) -> JSONResponse:
    with wired.engine.connect() as conn:
        found = tickets.get_ticket(conn, number)
    if found is None:
        raise NotFoundError(f"no ticket numbered {number!r}")
    return JSONResponse(queries.jsonable(found), status_code=status_code)


@router.get("/api/tickets")
def list_tickets(wired: Wired) -> JSONResponse:
    with wired.engine.connect() as conn:
        return JSONResponse(queries.jsonable(tickets.list_tickets(conn)))


@router.get("/api/tickets/{number}")
def get_ticket(number: str, wired: Wired) -> JSONResponse:
    return _ticket(wired, number)


@router.post("/api/tickets", status_code=201)
def open_ticket(body: OpenBody, wired: Wired) -> JSONResponse:
    with wired.engine.begin() as conn:
        number = tickets.open_by_hand(
            conn,
            site=body.site,
            agent=body.agent,
            device=body.device,
            priority=body.priority,
            summary=body.summary,
            by=body.by,
            now=wired.now(),
            context=wired.sla,
        )
    return _ticket(wired, number, 201)


@router.post("/api/tickets/{number}/notes")
def add_note(number: str, body: NoteBody, wired: Wired) -> JSONResponse:
    with wired.engine.begin() as conn:
        tickets.note(
            conn, number, body.text, by=body.by, now=wired.now(), context=wired.sla, is_update=body.update
        )
    return _ticket(wired, number)


@router.get("/api/tickets/{number}/diagnostics")
def ticket_diagnostics(number: str, wired: Wired) -> JSONResponse:
    """The commands sent for the ticket and the log bundles they brought."""
    with wired.engine.connect() as conn:
        rows = conn.execute(select(bundles).where(bundles.c.ticket == number)).all()
    found = {
        "commands": history.list_commands(wired.engine, ticket=number),
        "bundles": [bundle_dict(row) for row in rows],
    }
    return JSONResponse(queries.jsonable(found))


@router.post("/api/tickets/{number}/{action}")
def take_step(number: str, action: str, body: StepBody, wired: Wired) -> JSONResponse:
    if action not in tickets.STEPS:
        raise NotFoundError(f"no step {action!r} (one of {', '.join(tickets.STEPS)})")
    with wired.engine.begin() as conn:
        tickets.step(
            conn,
            number,
            action,
            by=body.by,
            now=wired.now(),
            context=wired.sla,
            text=body.text,
            deliver_by=body.deliver_by,
        )
    return _ticket(wired, number)
