"""A device's telemetry charts on its page: the hourly history (``collector/store/history.py``) of each of its
metrics over the last days, drawn on the server as inline SVG (no script, no build step): the band from each
hour's minimum to its maximum, and the line of its mean.

The history is read by its key (site, agent, device, metric, hour), so a chart costs the same whatever the
fleet's size; an hour appears once it is rolled up (``retention.history``), so the newest hour shows a little
after it ends (docs/retention.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from collector.store.history import device_history, sample_hours

#: How far back the charts go, and how many metrics a page draws at most (the ones with most hours first).
DAYS = 7
METRICS = 8
WIDTH, HEIGHT = 600.0, 120.0


@dataclass(frozen=True)
class Chart:
    """One metric's chart: its SVG paths in a WIDTH x HEIGHT box, and the figures printed beside it."""

    metric: str
    band: str  # the min-max polygon's points
    mean: str  # the mean polyline's points
    low: float
    high: float
    last: float
    last_hour: datetime
    hours: int


def device_charts(conn: Connection, site: str, agent: str, device: str, now: datetime) -> list[Chart]:
    """The charts of one device's metrics over the last DAYS days, the metrics in name order."""
    since = now - timedelta(days=DAYS)
    names = conn.execute(
        select(sample_hours.c.metric)
        .distinct()
        .where(
            sample_hours.c.site == site,
            sample_hours.c.agent == agent,
            sample_hours.c.device == device,
            sample_hours.c.hour >= since,
        )
        .order_by(sample_hours.c.metric)
        .limit(METRICS)
    ).scalars()
    charts = []
    for metric in names:
        hours = device_history(conn, site, agent, device, metric, since=since, until=now)
        if hours:
            charts.append(_chart(metric, hours, since, now))
    return charts


def _chart(metric: str, hours: list[dict[str, Any]], since: datetime, now: datetime) -> Chart:
    low = float(min(hour["minimum"] for hour in hours))
    high = float(max(hour["maximum"] for hour in hours))
    span = (high - low) or 1.0
    seconds = (now - since).total_seconds()

    def x(moment: datetime) -> float:
        return round((moment - since).total_seconds() / seconds * WIDTH, 1)

    def y(value: float) -> float:
        return round(HEIGHT - (value - low) / span * HEIGHT, 1)

    top = [f"{x(hour['hour'])},{y(hour['maximum'])}" for hour in hours]
    bottom = [f"{x(hour['hour'])},{y(hour['minimum'])}" for hour in reversed(hours)]
    mean = [f"{x(hour['hour'])},{y(hour['mean'])}" for hour in hours]
    return Chart(
        metric=metric,
        band=" ".join(top + bottom),
        mean=" ".join(mean),
        low=low,
        high=high,
        last=float(hours[-1]["mean"]),
        last_hour=hours[-1]["hour"],
        hours=len(hours),
    )
