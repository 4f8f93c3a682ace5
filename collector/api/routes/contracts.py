"""``/api/contracts`` (the HEZO+ contract registry) and ``/api/coverage`` (each device's coverage by it).
Admins keep the registry; a customer's user reads its own contracts and devices."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from collector.api.auth import Admin, ContractNumber, Reader, contract_visible, scope
from collector.api.deps import Wired
from collector.api.errors import answers
from collector.registry import contracts

router = APIRouter(tags=["contracts"])


class ContractBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: date = Field(ge=date(1990, 1, 1), le=date(2199, 12, 31))
    years: int = Field(ge=1, le=5)
    customer: str | None = Field(default=None, max_length=255)
    serials: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        default_factory=list, max_length=10000
    )
    contact: str | None = Field(default=None, max_length=254, description="the customer's e-mail for updates")


@router.get("/api/contracts", responses=answers(401, 403))
def list_contracts(wired: Wired, who: Reader) -> JSONResponse:
    today = wired.sla.calendars.default.local(wired.now()).date()
    with wired.engine.connect() as conn:
        rows = contracts.list_contracts(conn, today, wired.rules.contract_warning_days)
    if who.customer is not None:
        rows = [row for row in rows if row["customer"] == who.customer]
    return JSONResponse(rows)


@router.put(
    "/api/contracts/{number}",
    responses=answers(401, 403, 404, 422),
    dependencies=[Depends(contract_visible)],
)
def put_contract(number: ContractNumber, body: ContractBody, wired: Wired, who: Admin) -> JSONResponse:
    """Register or replace a contract."""
    row = contracts.values(
        number=number,
        start=body.start,
        years=body.years,
        customer=body.customer,
        serials=body.serials,
        contact=body.contact,
    )
    with wired.engine.begin() as conn:
        contracts.put(conn, row, by=who.actor, now=wired.now())
    ends = contracts.Contract(number, body.start, body.years, None, ()).ends
    return JSONResponse({"number": number, "ends": ends.isoformat()})


@router.delete(
    "/api/contracts/{number}",
    status_code=204,
    response_class=Response,
    responses=answers(401, 403, 404, 422),
    dependencies=[Depends(contract_visible)],
)
def delete_contract(number: ContractNumber, wired: Wired, who: Admin) -> Response:
    with wired.engine.begin() as conn:
        contracts.remove(conn, number, by=who.actor, now=wired.now())
    return Response(status_code=204)


@router.get("/api/coverage", responses=answers(401, 403, 422))
def coverage(wired: Wired, who: Reader, problems: bool = False) -> JSONResponse:
    with wired.engine.connect() as conn:
        seen = scope(conn, who)
        rows = contracts.device_coverage(conn, wired.today_of, wired.rules.contract_warning_days)
    if seen is not None:
        rows = [row for row in rows if seen.has_device(row["site"], row["agent"], row["device"])]
    if problems:
        rows = [row for row in rows if row["warning"] is not None]
    return JSONResponse(rows)
