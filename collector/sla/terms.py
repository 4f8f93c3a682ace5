"""The SLA engine: per priority, the deadlines a ticket has at each step, and whether they are kept.

Deadlines (docs/sla.md):

- ``response``: first response ``response_hours`` after opening, counted in the priority's service window;
  kept by the ``respond`` step;
- ``update``: after the response, the next update is due ``update_hours`` after the last one (the response,
  a note marked as an update, or any later step), while the ticket waits on the service side (responded,
  confirmed, shipped);
- ``delivery``: once the fault is confirmed, the replacement is due ``delivery_hours`` later counted in the
  priority's window (or at the close of the next working day, ``delivery: next-business-day``), or on a later
  date the user accepted; kept by the ``deliver`` step;
- ``return``: the user sends the faulty unit back within ``return_days`` calendar days of the delivery (until
  the end of the last of those days, midnight on the site's clock); kept by the ``return`` step.

A deadline not kept yet is ``warning`` within ``warn_before_minutes`` of its due time, ``breached`` past it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal

from collector.sla.calendar import SiteCalendar, Window

PRIORITIES = ("critical", "high", "low")
PriorityName = Literal["critical", "high", "low"]
Delivery = Literal["hours", "next-business-day"]

#: SLA states, from best to worst.
SLA_OK = "ok"
SLA_WARNING = "warning"
SLA_BREACHED = "breached"
SLA_NONE = "none"  # no deadline running (a closed ticket, or one waiting on the user)

#: Statuses in which the service side owes the reporter regular updates.
UPDATE_STATUSES = frozenset({"responded", "confirmed", "shipped"})
DELIVERY_STATUSES = frozenset({"confirmed", "shipped"})


@dataclass(frozen=True)
class PriorityPolicy:
    """The terms of one priority."""

    window: Window
    response_hours: float
    update_hours: float
    delivery_hours: float | None
    delivery: Delivery = "hours"


#: The table of the HEZO+ terms (docs/service-terms.md).
DEFAULT_POLICIES: dict[str, PriorityPolicy] = {
    "critical": PriorityPolicy("24x7", response_hours=1, update_hours=1, delivery_hours=8),
    "high": PriorityPolicy("8x5", response_hours=1, update_hours=2, delivery_hours=8),
    "low": PriorityPolicy("8x5", response_hours=4, update_hours=4, delivery_hours=None),
}


@dataclass(frozen=True)
class SlaPolicy:
    """Every priority's terms, the warning lead time and the return period of a faulty unit."""

    priorities: Mapping[str, PriorityPolicy]
    warn_before: timedelta = timedelta(minutes=15)
    return_days: int = 7

    @classmethod
    def default(cls) -> SlaPolicy:
        return cls(priorities=dict(DEFAULT_POLICIES))

    def of(self, priority: str) -> PriorityPolicy:
        return self.priorities[priority]


@dataclass(frozen=True)
class TicketTimes:
    """What the deadlines of a ticket depend on."""

    priority: str
    status: str
    opened_at: datetime
    responded_at: datetime | None = None
    last_update_at: datetime | None = None
    confirmed_at: datetime | None = None
    delivery_accepted: datetime | None = None
    delivered_at: datetime | None = None
    returned_at: datetime | None = None

    @classmethod
    def of_row(cls, row: Any) -> TicketTimes:
        """From a ``tickets`` row (or dict-like with the same keys)."""

        def get(key: str) -> Any:
            return row[key] if isinstance(row, Mapping) else getattr(row, key)

        return cls(
            priority=get("priority"),
            status=get("status"),
            opened_at=get("opened_at"),
            responded_at=get("responded_at"),
            last_update_at=get("last_update_at"),
            confirmed_at=get("confirmed_at"),
            delivery_accepted=get("delivery_accepted"),
            delivered_at=get("delivered_at"),
            returned_at=get("returned_at"),
        )


@dataclass(frozen=True)
class Deadlines:
    response_due: datetime
    update_due: datetime | None
    delivery_due: datetime | None
    return_due: datetime | None

    def as_dict(self) -> dict[str, datetime | None]:
        return {
            "response_due": self.response_due,
            "update_due": self.update_due,
            "delivery_due": self.delivery_due,
            "return_due": self.return_due,
        }


def deadlines(policy: SlaPolicy, calendar: SiteCalendar, times: TicketTimes) -> Deadlines:
    """Every deadline of a ticket as it stands; None for one that does not apply (yet, or any more)."""
    terms = policy.of(times.priority)
    response_due = calendar.add(times.opened_at, terms.response_hours, terms.window)
    update_due = None
    if times.status in UPDATE_STATUSES and times.responded_at is not None:
        last = times.last_update_at or times.responded_at
        update_due = calendar.add(last, terms.update_hours, terms.window)
    delivery_due = None
    if times.confirmed_at is not None and terms.delivery_hours is not None:
        if times.delivery_accepted is not None:
            delivery_due = times.delivery_accepted
        elif terms.delivery == "next-business-day":
            delivery_due = calendar.next_working_day_close(times.confirmed_at)
        else:
            delivery_due = calendar.add(times.confirmed_at, terms.delivery_hours, terms.window)
    return_due = None
    if times.delivered_at is not None:
        # The end of the last of the ``return_days`` calendar days after delivery, on the site's clock.
        last_day = calendar.local(times.delivered_at).date() + timedelta(days=policy.return_days + 1)
        return_due = datetime.combine(last_day, time(0), tzinfo=calendar.timezone).astimezone(UTC)
    return Deadlines(response_due, update_due, delivery_due, return_due)


def running(times: TicketTimes, due: Deadlines) -> dict[str, datetime]:
    """The deadlines still to be kept, by kind (``response``, ``update``, ``delivery``, ``return``)."""
    result: dict[str, datetime] = {}
    if times.status in {"closed", "resolved"}:
        return result
    if times.responded_at is None and times.status in {"open", "recovered"}:
        result["response"] = due.response_due
    if due.update_due is not None:
        result["update"] = due.update_due
    if due.delivery_due is not None and times.status in DELIVERY_STATUSES:
        result["delivery"] = due.delivery_due
    if due.return_due is not None and times.status == "delivered":
        result["return"] = due.return_due
    return result


def state_at(policy: SlaPolicy, pending: Mapping[str, datetime], now: datetime) -> str:
    """``breached`` if a pending deadline has passed, ``warning`` if one is near, ``ok``; ``none`` if none."""
    if not pending:
        return SLA_NONE
    if any(now > due for due in pending.values()):
        return SLA_BREACHED
    if any(now >= due - policy.warn_before for due in pending.values()):
        return SLA_WARNING
    return SLA_OK


def missed(pending: Mapping[str, datetime], now: datetime) -> dict[str, datetime]:
    """The pending deadlines already past at ``now``."""
    return {kind: due for kind, due in pending.items() if now > due}


def kept_late(kind: str, due: datetime | None, at: datetime) -> bool:
    """Whether a step that keeps deadline ``kind`` (due at ``due``) came after it: a breach to record."""
    return due is not None and at > due


class Calendars:
    """Each site's calendar from the configuration; a site not listed gets the default one."""

    def __init__(self, default: SiteCalendar, sites: Mapping[str, SiteCalendar] | None = None) -> None:
        self.default = default
        self.sites = dict(sites or {})

    def __getitem__(self, site: str) -> SiteCalendar:
        return self.sites.get(site, self.default)


@dataclass(frozen=True)
class SlaContext:
    """What every SLA computation needs: the terms and the site calendars."""

    policy: SlaPolicy
    calendars: Calendars

    @classmethod
    def default(cls) -> SlaContext:
        return cls(SlaPolicy.default(), Calendars(_default_calendar()))

    @classmethod
    def from_config(cls, config: Any) -> SlaContext:
        """From a ``CollectorConfig`` (``sla``, ``sites``, ``default_site``, ``incidents``)."""
        from collector.sla.calendar import parse_hours

        def calendar(site: Any) -> SiteCalendar:
            return SiteCalendar.build(
                site.timezone,
                hours=parse_hours(site.hours),
                workdays=site.workdays,
                country=site.holidays,
                subdivision=site.subdivision,
                days_off=site.days_off,
            )

        priorities = {
            name: PriorityPolicy(
                item.window, item.response_hours, item.update_hours, item.delivery_hours, item.delivery
            )
            for name, item in config.sla.priorities.items()
        }
        override = config.incidents.critical_response_hours
        if override is not None:
            critical = priorities["critical"]
            priorities["critical"] = PriorityPolicy(
                critical.window, override, critical.update_hours, critical.delivery_hours, critical.delivery
            )
        policy = SlaPolicy(
            priorities=priorities,
            warn_before=timedelta(minutes=config.sla.warn_before_minutes),
            return_days=config.sla.return_days,
        )
        sites = {name: calendar(site) for name, site in config.sites.items()}
        return cls(policy, Calendars(calendar(config.default_site), sites))


def _default_calendar() -> SiteCalendar:
    from collector.sla.calendar import public_holidays

    return SiteCalendar(holidays=public_holidays("PL"))
