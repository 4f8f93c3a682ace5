"""``/api/devices``: every device the agents watch (``include_retired`` for those no longer listed); a
customer's user sees the devices under its contracts. ``/api/devices/{site}/{agent}/{device}/history``: one
device's hourly history (docs/retention.md), the hours of one metric or, without one, the metrics it has."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, AwareDatetime, BaseModel, Field

from collector.api.auth import Id, Reader, device_visible, scope
from collector.api.deps import Wired
from collector.api.errors import answers
from collector.errors import InvalidError
from collector.store import queries
from collector.store.history import device_history, device_metrics, hour_of
from protocol import format_ts

router = APIRouter(tags=["devices"])

#: The longest window one request reads, the one it reads when not told, and the most metrics it lists.
MAX_DAYS = 90
DEFAULT_DAYS = 7
MAX_HOURS = MAX_DAYS * 24
MAX_METRICS = 1000
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
LATEST = datetime(2199, 12, 31, tzinfo=UTC)


def within_years(value: datetime | None) -> datetime | None:
    """A time between 1990 and 2199: the store's range, and then some (and no overflow turning it to UTC)."""
    if value is not None and not EARLIEST <= value <= LATEST:
        raise ValueError("expected a time between 1990 and 2199")
    return value


Moment = Annotated[AwareDatetime | None, AfterValidator(within_years)]
#: A metric's name as agents send it (``protocol/bodies.py``): up to 128 characters, none a control character.
MetricName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]


@router.get("/api/devices", responses=answers(401, 403, 422))
def list_devices(wired: Wired, who: Reader, include_retired: bool = False) -> JSONResponse:
    with wired.engine.connect() as conn:
        seen = scope(conn, who)
        rows = queries.list_devices(conn, include_retired=include_retired)
    if seen is not None:
        rows = [row for row in rows if seen.has_device(row["site"], row["agent"], row["device"])]
    return JSONResponse(queries.jsonable(rows))


class HistoryHour(BaseModel):
    """One hour of one metric; a figure that is not a finite number (a total past a float's range) is null."""

    hour: datetime = Field(description="the hour's start, UTC")
    samples: int = Field(description="how many samples the hour had")
    minimum: float | None
    maximum: float | None
    mean: float | None


class HistoryMetric(BaseModel):
    """A metric the device has hours of in the window."""

    metric: str
    hours: int = Field(description="how many hours of it the window holds")
    first: datetime = Field(description="its first hour in the window")
    last: datetime = Field(description="its last hour in the window")


class DeviceHistory(BaseModel):
    """A device's hourly history over a window: ``hours`` of ``metric`` in time order, or without a metric
    the ``metrics`` it has hours of (by name). ``next``: where to go on (as ``since``) when ``limit`` cut the
    hours short, else null."""

    site: str
    agent: str
    device: str
    since: datetime = Field(description="the window's first hour, UTC")
    until: datetime = Field(description="the window's end (not included)")
    metric: str | None
    metrics: list[HistoryMetric]
    hours: list[HistoryHour]
    next: datetime | None


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _window(since: datetime | None, until: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    """The window asked for, in UTC, starting on the hour; ``InvalidError`` if upside down or too long."""
    end = (until or now).astimezone(UTC)
    start = (since or end - timedelta(days=DEFAULT_DAYS)).astimezone(UTC)
    if start >= end:
        raise InvalidError(f"since ({format_ts(start)}) must be before until ({format_ts(end)})")
    if end - start > timedelta(days=MAX_DAYS):
        raise InvalidError(
            f"the window from since to until is longer than {MAX_DAYS} days: ask for a shorter one, or "
            "for several in turn"
        )
    return hour_of(start), end


@router.get(
    "/api/devices/{site}/{agent}/{device}/history",
    response_model=DeviceHistory,
    responses=answers(401, 403, 404, 422),
    dependencies=[Depends(device_visible)],
)
def history(  # noqa: PLR0917 (the device's three ids are its path; the rest are the query)
    site: Id,
    agent: Id,
    device: Id,
    wired: Wired,
    who: Reader,
    metric: Annotated[
        MetricName | None, Query(description="the metric; without it, the metrics listed")
    ] = None,
    since: Annotated[Moment, Query(description=f"from (default: {DEFAULT_DAYS} days before until)")] = None,
    until: Annotated[Moment, Query(description="to, not included (default: now)")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_HOURS, description="the most hours answered")] = MAX_HOURS,
) -> JSONResponse:
    start, end = _window(since, until, wired.now())
    metrics: list[dict[str, Any]] = []
    hours: list[dict[str, Any]] = []
    more: datetime | None = None
    with wired.engine.connect() as conn:
        if metric is None:
            metrics = device_metrics(conn, site, agent, device, since=start, until=end, limit=MAX_METRICS)
        else:
            hours = device_history(conn, site, agent, device, metric, since=start, until=end, limit=limit + 1)
            if len(hours) > limit:
                more = hours.pop()["hour"]
    answer = DeviceHistory(
        site=site,
        agent=agent,
        device=device,
        since=start,
        until=end,
        metric=metric,
        metrics=[HistoryMetric(**row) for row in metrics],
        hours=[
            HistoryHour(
                hour=row["hour"],
                samples=row["samples"],
                minimum=_finite(row["minimum"]),
                maximum=_finite(row["maximum"]),
                mean=_finite(row["mean"]),
            )
            for row in hours
        ],
        next=more,
    )
    return JSONResponse(queries.jsonable(answer.model_dump()))
