"""The REST endpoints engineers use to move tickets along, open tickets by hand, and manage the contract
registry and the maintenance windows (docs/incidents.md). Bad input is a 4xx with the reason in ``detail``:
404 unknown ticket/contract/window, 409 a step the ticket's status does not allow, 422 bad fields."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Literal

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine

from collector import tickets
from collector.config import IncidentsConfig
from collector.errors import CollectorError, NotFoundError
from collector.registry import contracts, maintenance
from collector.sla.calendar import describe
from collector.sla.terms import SlaContext
from collector.store import queries
from collector.store.database import utcnow


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


class ContractBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: date
    years: int = Field(ge=1, le=5)
    customer: str | None = Field(default=None, max_length=255)
    serials: list[str] = Field(default_factory=list)


class WindowBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1, max_length=128)
    site: str = Field(min_length=1, max_length=64)
    agent: str | None = None
    device: str | None = None
    days: list[str] | None = None
    start: str | None = None
    end: str | None = None
    starts_at: datetime | None = Field(default=None, alias="from")
    ends_at: datetime | None = Field(default=None, alias="until")
    reason: str | None = None


def _refused(exc: tickets.TicketError) -> HTTPException:
    if isinstance(exc, tickets.NoSuchTicketError):
        return HTTPException(status_code=404, detail=str(exc))
    if isinstance(exc, tickets.IllegalTransitionError):
        return HTTPException(status_code=409, detail=str(exc))
    return HTTPException(status_code=422, detail=str(exc))


def router(  # noqa: PLR0915 (one closure per route, all over the same engine and terms)
    engine: Engine,
    context: SlaContext,
    rules: IncidentsConfig,
    now: Callable[[], datetime] = utcnow,
) -> APIRouter:
    """The routes over ``engine``, with the SLA terms and site calendars of ``context``."""
    api = APIRouter()

    def ticket(number: str) -> JSONResponse:
        with engine.connect() as conn:
            found = tickets.get_ticket(conn, number)
        return JSONResponse(queries.jsonable(found))

    @api.post("/api/tickets", status_code=201)
    def open_ticket(body: OpenBody) -> JSONResponse:
        try:
            with engine.begin() as conn:
                number = tickets.open_by_hand(
                    conn,
                    site=body.site,
                    agent=body.agent,
                    device=body.device,
                    priority=body.priority,
                    summary=body.summary,
                    by=body.by,
                    now=now(),
                    context=context,
                )
        except tickets.TicketError as exc:
            raise _refused(exc) from exc
        response = ticket(number)
        response.status_code = 201
        return response

    @api.post("/api/tickets/{number}/notes")
    def add_note(number: str, body: NoteBody) -> JSONResponse:
        try:
            with engine.begin() as conn:
                tickets.note(
                    conn, number, body.text, by=body.by, now=now(), context=context, is_update=body.update
                )
        except tickets.TicketError as exc:
            raise _refused(exc) from exc
        return ticket(number)

    @api.post("/api/tickets/{number}/{action}")
    def take_step(number: str, action: str, body: StepBody) -> JSONResponse:
        if action not in tickets.STEPS:
            raise HTTPException(
                status_code=404, detail=f"no step {action!r} (one of {', '.join(tickets.STEPS)})"
            )
        try:
            with engine.begin() as conn:
                tickets.step(
                    conn,
                    number,
                    action,
                    by=body.by,
                    now=now(),
                    context=context,
                    text=body.text,
                    deliver_by=body.deliver_by,
                )
        except tickets.TicketError as exc:
            raise _refused(exc) from exc
        return ticket(number)

    def today_of(site: str) -> date:
        return context.calendars[site].local(now()).date()

    @api.get("/api/contracts")
    def list_contracts() -> JSONResponse:
        today = context.calendars.default.local(now()).date()
        with engine.connect() as conn:
            return JSONResponse(contracts.list_contracts(conn, today, rules.contract_warning_days))

    @api.put("/api/contracts/{number}")
    def put_contract(number: str, body: ContractBody) -> JSONResponse:
        try:
            row = contracts.values(
                number=number,
                start=body.start,
                years=body.years,
                customer=body.customer,
                serials=body.serials,
            )
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc
        with engine.begin() as conn:
            contracts.put(conn, row)
        return JSONResponse(
            {
                "number": number,
                "ends": contracts.Contract(number, body.start, body.years, None, ()).ends.isoformat(),
            }
        )

    @api.delete("/api/contracts/{number}", status_code=204)
    def delete_contract(number: str) -> None:
        try:
            with engine.begin() as conn:
                contracts.remove(conn, number)
        except NotFoundError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from exc

    @api.get("/api/coverage")
    def coverage(problems: bool = False) -> JSONResponse:
        with engine.connect() as conn:
            rows = contracts.device_coverage(conn, today_of, rules.contract_warning_days)
        if problems:
            rows = [row for row in rows if row["warning"] is not None]
        return JSONResponse(rows)

    @api.get("/api/maintenance")
    def list_windows() -> JSONResponse:
        with engine.connect() as conn:
            return JSONResponse(queries.jsonable(maintenance.list_windows(conn)))

    @api.post("/api/maintenance", status_code=201)
    def add_window(body: WindowBody) -> JSONResponse:
        try:
            row = maintenance.values(
                name=body.name,
                site=body.site,
                agent=body.agent,
                device=body.device,
                days=body.days,
                start=body.start,
                end=body.end,
                starts_at=body.starts_at,
                ends_at=body.ends_at,
                reason=body.reason,
            )
            with engine.begin() as conn:
                maintenance.add(conn, row)
        except CollectorError as exc:
            raise HTTPException(status_code=exc.status, detail=str(exc)) from exc
        return JSONResponse(queries.jsonable(row), status_code=201)

    @api.delete("/api/maintenance/{name}", status_code=204)
    def delete_window(name: str) -> None:
        try:
            with engine.begin() as conn:
                maintenance.remove(conn, name)
        except NotFoundError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from exc

    @api.get("/api/sla")
    def terms() -> JSONResponse:
        policy = context.policy
        return JSONResponse(
            {
                "priorities": {
                    name: {
                        "window": item.window,
                        "response_hours": item.response_hours,
                        "update_hours": item.update_hours,
                        "delivery_hours": item.delivery_hours,
                        "delivery": item.delivery,
                    }
                    for name, item in policy.priorities.items()
                },
                "warn_before_minutes": policy.warn_before.total_seconds() / 60,
                "return_days": policy.return_days,
                "default_site": describe(context.calendars.default),
                "sites": {name: describe(cal) for name, cal in context.calendars.sites.items()},
            }
        )

    return api
