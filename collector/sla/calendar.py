"""A site's working calendar: its time zone, working hours, working days and public holidays.

8x5 deadlines are counted only inside working hours, day by day in the site's own time zone (so a
daylight-saving change moves the UTC instants of 08:00 and 16:00, not the local ones); 24x7 deadlines are
plain elapsed time. Every datetime in and out is timezone-aware; results are UTC.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

#: A service window: around the clock, or working hours on working days.
Window = Literal["24x7", "8x5"]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: How many days ahead a search for the next working day gives up (a calendar with no working day at all).
_HORIZON_DAYS = 3660


def public_holidays(country: str, subdivision: str | None = None) -> Container[date]:
    """The public holidays of ``country`` (ISO code, e.g. ``PL``) from the ``holidays`` package, all years."""
    import holidays  # the collector's extra; imported here so the agent never needs it

    result: Container[date] = holidays.country_holidays(country, subdiv=subdivision)
    return result


@dataclass(frozen=True)
class SiteCalendar:
    """When a site works. ``holidays`` is any container of dates (a ``holidays`` calendar, or a set)."""

    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/Warsaw"))
    start: time = time(8, 0)
    end: time = time(16, 0)
    workdays: frozenset[int] = frozenset(range(5))
    holidays: Container[date] = field(default_factory=frozenset)
    extra_days_off: frozenset[date] = frozenset()

    @classmethod
    def build(
        cls,
        timezone: str,
        *,
        hours: tuple[time, time],
        workdays: Iterable[str],
        country: str | None,
        subdivision: str | None = None,
        days_off: Iterable[date] = (),
    ) -> SiteCalendar:
        """From configuration values; ``country`` None means no public holidays."""
        return cls(
            timezone=ZoneInfo(timezone),
            start=hours[0],
            end=hours[1],
            workdays=frozenset(WEEKDAYS.index(day) for day in workdays),
            holidays=public_holidays(country, subdivision) if country else frozenset(),
            extra_days_off=frozenset(days_off),
        )

    def local(self, moment: datetime) -> datetime:
        """``moment`` in the site's time zone."""
        return _aware(moment).astimezone(self.timezone)

    def is_working_day(self, day: date) -> bool:
        """A working day: one of ``workdays``, not a public holiday, not an extra day off."""
        return day.weekday() in self.workdays and day not in self.holidays and day not in self.extra_days_off

    def working_interval(self, day: date) -> tuple[datetime, datetime]:
        """The working hours of ``day`` as UTC instants (whether or not ``day`` is a working day)."""
        opens = datetime.combine(day, self.start, tzinfo=self.timezone).astimezone(UTC)
        closes = datetime.combine(day, self.end, tzinfo=self.timezone).astimezone(UTC)
        return opens, closes

    def intervals(self, moment: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working intervals (UTC) that end after ``moment``, in order, the first clipped to start at it."""
        moment = _aware(moment).astimezone(UTC)
        day = self.local(moment).date()
        for offset in range(_HORIZON_DAYS):
            current = day + timedelta(days=offset)
            if not self.is_working_day(current):
                continue
            opens, closes = self.working_interval(current)
            if closes <= moment:
                continue
            yield max(opens, moment), closes
        raise ValueError("the calendar has no working day in ten years: check workdays and hours")

    def in_working_hours(self, moment: datetime) -> bool:
        """Whether ``moment`` falls inside the working hours of a working day."""
        moment = _aware(moment).astimezone(UTC)
        day = self.local(moment).date()
        if not self.is_working_day(day):
            return False
        opens, closes = self.working_interval(day)
        return opens <= moment < closes

    def add_working_hours(self, moment: datetime, hours: float) -> datetime:
        """The instant when ``hours`` of working time have passed since ``moment`` (UTC).

        Time before the next opening (a night, a weekend, a holiday) does not count; a deadline that uses up
        a day's hours exactly falls at that day's closing time.
        """
        remaining = timedelta(hours=hours)
        if remaining <= timedelta(0):
            return _aware(moment).astimezone(UTC)
        for opens, closes in self.intervals(moment):
            span = closes - opens
            if remaining <= span:
                return opens + remaining
            remaining -= span
        raise AssertionError("unreachable: intervals() raises when it runs out")

    def add(self, moment: datetime, hours: float, window: Window) -> datetime:
        """``hours`` after ``moment`` counted in ``window``: elapsed time for 24x7, working time for 8x5."""
        if window == "24x7":
            return _aware(moment).astimezone(UTC) + timedelta(hours=hours)
        return self.add_working_hours(moment, hours)

    def next_working_day_close(self, moment: datetime) -> datetime:
        """The closing time of the first working day after the local date of ``moment`` (UTC)."""
        day = self.local(moment).date()
        for offset in range(1, _HORIZON_DAYS):
            current = day + timedelta(days=offset)
            if self.is_working_day(current):
                return self.working_interval(current)[1]
        raise ValueError("the calendar has no working day in ten years: check workdays and hours")


def parse_hours(text: str) -> tuple[time, time]:
    """``"08:00-16:00"`` -> (08:00, 16:00); the end must come after the start, on the same day."""
    try:
        first, second = text.split("-")
        opens, closes = time.fromisoformat(first.strip()), time.fromisoformat(second.strip())
    except ValueError as exc:
        raise ValueError(f"{text!r} is not working hours like '08:00-16:00'") from exc
    if closes <= opens:
        raise ValueError(f"{text!r}: working hours must end after they start, on the same day")
    return opens, closes


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: calendars take timezone-aware moments only")
    return moment


def describe(calendar: SiteCalendar) -> dict[str, Any]:
    """The calendar as shown by the API: time zone, hours and working days."""
    return {
        "timezone": calendar.timezone.key,
        "hours": f"{calendar.start:%H:%M}-{calendar.end:%H:%M}",
        "workdays": [WEEKDAYS[day] for day in sorted(calendar.workdays)],
    }
