"""``/api/maintenance``: maintenance windows, recurring or one-off, during which no ticket opens."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from collector.api.deps import Wired
from collector.registry import maintenance
from collector.store import queries

router = APIRouter(tags=["maintenance"])


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


@router.get("/api/maintenance")
def list_windows(wired: Wired) -> JSONResponse:
    with wired.engine.connect() as conn:
        return JSONResponse(queries.jsonable(maintenance.list_windows(conn)))


@router.post("/api/maintenance", status_code=201)
def add_window(body: WindowBody, wired: Wired) -> JSONResponse:
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
    with wired.engine.begin() as conn:
        maintenance.add(conn, row)
    return JSONResponse(queries.jsonable(row), status_code=201)


@router.delete("/api/maintenance/{name}", status_code=204)
def delete_window(name: str, wired: Wired) -> None:
    with wired.engine.begin() as conn:
        maintenance.remove(conn, name)
