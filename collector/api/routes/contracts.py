"""``/api/contracts`` (the HEZO+ contract registry) and ``/api/coverage`` (each device's coverage by it)."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from collector.api.deps import Wired
from collector.registry import contracts

router = APIRouter(tags=["contracts"])


class ContractBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: date
    years: int = Field(ge=1, le=5)
    customer: str | None = Field(default=None, max_length=255)
    serials: list[str] = Field(default_factory=list, max_length=10000)
    contact: str | None = Field(default=None, max_length=254, description="the customer's e-mail for updates")


@router.get("/api/contracts")
def list_contracts(wired: Wired) -> JSONResponse:
    today = wired.sla.calendars.default.local(wired.now()).date()
    with wired.engine.connect() as conn:
        return JSONResponse(contracts.list_contracts(conn, today, wired.rules.contract_warning_days))


@router.put("/api/contracts/{number}")
def put_contract(number: str, body: ContractBody, wired: Wired) -> JSONResponse:
    row = contracts.values(
        number=number,
        start=body.start,
        years=body.years,
        customer=body.customer,
        serials=body.serials,
        contact=body.contact,
    )
    with wired.engine.begin() as conn:
        contracts.put(conn, row)
    ends = contracts.Contract(number, body.start, body.years, None, ()).ends
    return JSONResponse({"number": number, "ends": ends.isoformat()})


@router.delete("/api/contracts/{number}", status_code=204)
def delete_contract(number: str, wired: Wired) -> None:
    with wired.engine.begin() as conn:
        contracts.remove(conn, number)


@router.get("/api/coverage")
def coverage(wired: Wired, problems: bool = False) -> JSONResponse:
    with wired.engine.connect() as conn:
        rows = contracts.device_coverage(conn, wired.today_of, wired.rules.contract_warning_days)
    if problems:
        rows = [row for row in rows if row["warning"] is not None]
    return JSONResponse(rows)
