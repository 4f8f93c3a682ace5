"""Maintenance windows: times when a site, an agent or one device is expected to be off, so no ticket opens.

A window is either *recurring* (``days`` on which it starts, local ``start`` and ``end`` times on the site's
clock; an ``end`` not after ``start`` means the next day, so ``mon..fri 22:00-06:00`` covers each weeknight)
or *one-off* (``starts_at`` .. ``ends_at``, absolute instants). Windows come from the configuration file
(source ``config``, replaced at every start) or from the CLI/API (source ``api``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from collector import audit
from collector.errors import InvalidError, NotFoundError
from collector.sla.calendar import WEEKDAYS, SiteCalendar
from collector.store.database import utcnow
from collector.store.schema import maintenance


def check_maintenance(  # noqa: PLR0917 (the fields of a window, in their usual order)
    days: Iterable[str] | None,
    start: str | None,
    end: str | None,
    starts_at: datetime | None,
    ends_at: datetime | None,
    agent: str | None,
    device: str | None,
) -> None:
    """Raise ``InvalidError`` saying what is wrong with a window's fields."""
    recurring = days is not None or start is not None or end is not None
    once = starts_at is not None or ends_at is not None
    if recurring == once:
        raise InvalidError("give either days, start and end (recurring) or from and until (one-off)")
    if device is not None and agent is None:
        raise InvalidError("a device window needs the device's agent too (device ids are unique per agent)")
    if recurring:
        if not days or start is None or end is None:
            raise InvalidError("a recurring window needs days, start and end")
        for day in days:
            if day not in WEEKDAYS:
                raise InvalidError(f"unknown day {day!r} (one of {', '.join(WEEKDAYS)})")
        for text in (start, end):
            try:
                time.fromisoformat(text)
            except ValueError as exc:
                raise InvalidError(f"{text!r} is not a time like 22:00") from exc
    else:
        if starts_at is None or ends_at is None:
            raise InvalidError("a one-off window needs from and until")
        if starts_at.tzinfo is None or ends_at.tzinfo is None:
            raise InvalidError("from and until need a time zone (like 2026-12-01T22:00:00+01:00)")
        if ends_at <= starts_at:
            raise InvalidError("until must be after from")


@dataclass(frozen=True)
class Window:
    name: str
    site: str
    agent: str | None
    device: str | None
    days: frozenset[int]
    start: time | None
    end: time | None
    starts_at: datetime | None
    ends_at: datetime | None
    reason: str | None

    @classmethod
    def of_row(cls, row: Any) -> Window:
        return cls(
            name=row.name,
            site=row.site,
            agent=row.agent,
            device=row.device,
            days=frozenset(WEEKDAYS.index(day) for day in (row.days or "").split(",") if day),
            start=time.fromisoformat(row.start_time) if row.start_time else None,
            end=time.fromisoformat(row.end_time) if row.end_time else None,
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            reason=row.reason,
        )

    def covers(self, site: str, agent: str | None, device: str | None) -> bool:
        """Whether the window's scope includes this site, agent (None: the site as a whole) and device."""
        if self.site != site:
            return False
        if self.agent is not None and self.agent != agent:
            return False
        return self.device is None or self.device == device

    def active(self, moment: datetime, calendar: SiteCalendar) -> bool:
        """Whether ``moment`` falls inside the window (recurring times on ``calendar``'s clock)."""
        if self.starts_at is not None and self.ends_at is not None:
            return self.starts_at <= moment < self.ends_at
        assert self.start is not None
        assert self.end is not None
        today = calendar.local(moment).date()
        for day in (today - timedelta(days=1), today):
            if day.weekday() not in self.days:
                continue
            begins = datetime.combine(day, self.start, tzinfo=calendar.timezone)
            end_day = day if self.end > self.start else day + timedelta(days=1)
            ends = datetime.combine(end_day, self.end, tzinfo=calendar.timezone)
            if begins <= moment < ends:
                return True
        return False


def load(conn: Connection) -> list[Window]:
    return [Window.of_row(row) for row in conn.execute(select(maintenance).order_by(maintenance.c.name))]


def holding(
    windows: Iterable[Window],
    calendars: Mapping[str, SiteCalendar] | Any,
    moment: datetime,
    *,
    site: str,
    agent: str | None,
    device: str | None,
) -> Window | None:
    """The first window active at ``moment`` over this site/agent/device, or None."""
    for window in windows:
        if window.covers(site, agent, device) and window.active(moment, calendars[site]):
            return window
    return None


def values(
    *,
    name: str,
    site: str,
    agent: str | None = None,
    device: str | None = None,
    days: list[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """A row for the ``maintenance`` table, checked (``InvalidError`` with the reason)."""
    check_maintenance(days, start, end, starts_at, ends_at, agent, device)
    return {
        "name": name,
        "site": site,
        "agent": agent,
        "device": device,
        "days": ",".join(days) if days else None,
        "start_time": start,
        "end_time": end,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "reason": reason,
    }


def add(
    conn: Connection,
    row: dict[str, Any],
    source: str = "api",
    *,
    by: str | None = None,
    now: datetime | None = None,
) -> None:
    """Add a window; ``InvalidError`` if one has the same name (names are unique). Audited as ``by``'s when
    given (people's changes, not the configuration file's)."""
    if conn.execute(select(maintenance.c.id).where(maintenance.c.name == row["name"])).first() is not None:
        raise InvalidError(f"a maintenance window named {row['name']!r} exists already")
    conn.execute(insert(maintenance).values(source=source, **row))
    if by is not None:
        when = (
            f"{row['days']} {row['start_time']}-{row['end_time']}"
            if row.get("days")
            else f"{row['starts_at']} to {row['ends_at']}"
        )
        place = "/".join(part for part in (row["site"], row.get("agent"), row.get("device")) if part)
        audit.record(
            conn,
            now or utcnow(),
            "maintenance-add",
            f"{place}: {when}",
            actor=by,
            site=row["site"],
            agent=row.get("agent"),
            subject=row["name"],
        )


def remove(conn: Connection, name: str, *, by: str | None = None, now: datetime | None = None) -> None:
    """Remove the window named ``name``; ``NotFoundError`` if there is none."""
    if not conn.execute(delete(maintenance).where(maintenance.c.name == name)).rowcount:
        raise NotFoundError(f"no maintenance window named {name!r}")
    if by is not None:
        audit.record(conn, now or utcnow(), "maintenance-remove", name, actor=by, subject=name)


def replace_configured(conn: Connection, rows: Iterable[dict[str, Any]]) -> None:
    """Make the ``config`` windows exactly ``rows`` (a name taken by an API window is left to it)."""
    conn.execute(delete(maintenance).where(maintenance.c.source == "config"))
    taken = set(conn.execute(select(maintenance.c.name)).scalars())
    for row in rows:
        if row["name"] not in taken:
            add(conn, row, source="config")


def list_windows(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(select(maintenance).order_by(maintenance.c.site, maintenance.c.name))
    result = []
    for row in rows:
        item = dict(row._mapping)
        item.pop("id")
        item["days"] = item["days"].split(",") if item["days"] else None
        result.append(item)
    return result
