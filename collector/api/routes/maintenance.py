"""``/api/maintenance``: maintenance windows, recurring or one-off, during which no ticket opens. Engineers
add and remove them; a customer's user reads those of its own sites and devices."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from collector.api.auth import Engineer, Reader, WindowName, scope, window_visible
from collector.api.deps import Wired
from collector.api.errors import answers
from collector.config import Weekday
from collector.registry import maintenance
from collector.store import queries

router = APIRouter(tags=["maintenance"])

EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
LATEST = datetime(2199, 12, 31, tzinfo=UTC)


def within_years(value: datetime | None) -> datetime | None:
    """A time between 1990 and 2199 (and with its time zone): the store's range, and then some."""
    if value is not None and value.tzinfo is not None and not EARLIEST <= value <= LATEST:
        raise ValueError("expected a time between 1990 and 2199")
    return value


Moment = Annotated[datetime | None, AfterValidator(within_years)]
LocalTime = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM")]


class WindowBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1, max_length=128)
    site: str = Field(min_length=1, max_length=64)
    agent: str | None = Field(default=None, min_length=1, max_length=64)
    device: str | None = Field(default=None, min_length=1, max_length=64)
    days: list[Weekday] | None = Field(default=None, min_length=1, max_length=7)
    start: LocalTime | None = None
    end: LocalTime | None = None
    starts_at: Moment = Field(default=None, alias="from")
    ends_at: Moment = Field(default=None, alias="until")
    reason: str | None = Field(default=None, max_length=10000)


@router.get("/api/maintenance", responses=answers(401, 403))
def list_windows(wired: Wired, who: Reader) -> JSONResponse:
    with wired.engine.connect() as conn:
        seen = scope(conn, who)
        rows = maintenance.list_windows(conn)
    if seen is not None:
        rows = [row for row in rows if seen.has_window(row)]
    return JSONResponse(queries.jsonable(rows))


@router.post("/api/maintenance", status_code=201, responses=answers(401, 403, 422))
def add_window(body: WindowBody, wired: Wired, who: Engineer) -> JSONResponse:
    row = maintenance.values(
        name=body.name,
        site=body.site,
        agent=body.agent,
        device=body.device,
        days=list(body.days) if body.days is not None else None,
        start=body.start,
        end=body.end,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        reason=body.reason,
    )
    with wired.engine.begin() as conn:
        maintenance.add(conn, row, by=who.actor, now=wired.now())
    return JSONResponse(queries.jsonable(row), status_code=201)


@router.delete(
    "/api/maintenance/{name}",
    status_code=204,
    response_class=Response,
    responses=answers(401, 403, 404, 422),
    dependencies=[Depends(window_visible)],
)
def delete_window(name: WindowName, wired: Wired, who: Engineer) -> Response:
    with wired.engine.begin() as conn:
        maintenance.remove(conn, name, by=who.actor, now=wired.now())
    return Response(status_code=204)
