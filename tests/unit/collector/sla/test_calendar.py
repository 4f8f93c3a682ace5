"""SLA deadlines on a Polish site's calendar, checked against values computed by hand.

The site: Europe/Warsaw, working hours 08:00-16:00 Monday to Friday, Polish public holidays. 2026 facts used:
Nov 11 (Wednesday) and Dec 24-26 are holidays, Easter Monday is Apr 6, summer time starts Sun Mar 29
(02:00 CET -> 03:00 CEST) and ends Sun Oct 25 (03:00 CEST -> 02:00 CET). Critical is 24x7 (1 h response,
1 h updates, 8 h delivery); High is 8x5 (1 h, 2 h, 8 working hours); Low is 8x5 (4 h, 4 h, no delivery).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from collector.sla.calendar import SiteCalendar, parse_hours
from collector.sla.terms import (
    SLA_BREACHED,
    SLA_OK,
    SLA_WARNING,
    PriorityPolicy,
    SlaPolicy,
    TicketTimes,
    deadlines,
    running,
    state_at,
)

WARSAW = ZoneInfo("Europe/Warsaw")
CALENDAR = SiteCalendar.build(
    "Europe/Warsaw",
    hours=parse_hours("08:00-16:00"),
    workdays=["mon", "tue", "wed", "thu", "fri"],
    country="PL",
)
POLICY = SlaPolicy.default()


def at(text: str) -> datetime:
    """``2026-11-24 10:00`` on the Warsaw clock, or ``...Z`` for a UTC instant (for the ambiguous hour)."""
    if text.endswith("Z"):
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
    return datetime.fromisoformat(text).replace(tzinfo=WARSAW)


def due(priority: str, opened: str, kind: str) -> datetime | None:
    """The ``kind`` deadline of a ticket opened at ``opened`` and, for update and delivery, responded to
    and confirmed at that same moment."""
    moment = at(opened)
    if kind == "response":
        times = TicketTimes(priority, "open", moment)
        return deadlines(POLICY, CALENDAR, times).response_due
    if kind == "update":
        times = TicketTimes(priority, "responded", moment, responded_at=moment)
        return deadlines(POLICY, CALENDAR, times).update_due
    times = TicketTimes(priority, "confirmed", moment, responded_at=moment, confirmed_at=moment)
    return deadlines(POLICY, CALENDAR, times).delivery_due


CASES = [
    # A Tuesday morning.
    ("critical", "2026-11-24 10:00", "response", "2026-11-24 11:00"),
    ("critical", "2026-11-24 10:00", "update", "2026-11-24 11:00"),
    ("critical", "2026-11-24 10:00", "delivery", "2026-11-24 18:00"),
    ("high", "2026-11-24 10:00", "response", "2026-11-24 11:00"),
    ("high", "2026-11-24 10:00", "update", "2026-11-24 12:00"),
    ("high", "2026-11-24 10:00", "delivery", "2026-11-25 10:00"),
    ("low", "2026-11-24 10:00", "response", "2026-11-24 14:00"),
    ("low", "2026-11-24 10:00", "update", "2026-11-24 14:00"),
    # Friday afternoon: 8x5 clocks stop at 16:00 and go on on Monday.
    ("critical", "2026-11-27 15:30", "response", "2026-11-27 16:30"),
    ("critical", "2026-11-27 15:30", "delivery", "2026-11-27 23:30"),
    ("high", "2026-11-27 15:30", "response", "2026-11-30 08:30"),
    ("high", "2026-11-27 15:30", "update", "2026-11-30 09:30"),
    ("high", "2026-11-27 15:30", "delivery", "2026-11-30 15:30"),
    ("low", "2026-11-27 15:30", "response", "2026-11-30 11:30"),
    # Saturday: nothing counts before Monday 08:00; 8 working hours end exactly at Monday's close.
    ("critical", "2026-11-28 12:00", "response", "2026-11-28 13:00"),
    ("critical", "2026-11-28 12:00", "delivery", "2026-11-28 20:00"),
    ("high", "2026-11-28 12:00", "response", "2026-11-30 09:00"),
    ("high", "2026-11-28 12:00", "update", "2026-11-30 10:00"),
    ("high", "2026-11-28 12:00", "delivery", "2026-11-30 16:00"),
    ("low", "2026-11-28 12:00", "response", "2026-11-30 12:00"),
    # A weeknight.
    ("critical", "2026-11-25 23:00", "response", "2026-11-26 00:00"),
    ("high", "2026-11-25 23:00", "response", "2026-11-26 09:00"),
    ("high", "2026-11-25 23:00", "delivery", "2026-11-26 16:00"),
    ("low", "2026-11-25 23:00", "response", "2026-11-26 12:00"),
    # The evening before Independence Day (Wed Nov 11): the next working day is Thursday.
    ("critical", "2026-11-10 17:00", "response", "2026-11-10 18:00"),
    ("critical", "2026-11-10 17:00", "delivery", "2026-11-11 01:00"),
    ("high", "2026-11-10 17:00", "response", "2026-11-12 09:00"),
    ("high", "2026-11-10 17:00", "delivery", "2026-11-12 16:00"),
    ("low", "2026-11-10 17:00", "response", "2026-11-12 12:00"),
    # On the holiday itself.
    ("high", "2026-11-11 10:00", "response", "2026-11-12 09:00"),
    ("low", "2026-11-11 10:00", "update", "2026-11-12 12:00"),
    # Good Friday works in Poland; Easter Monday (Apr 6) does not.
    ("high", "2026-04-03 14:00", "response", "2026-04-03 15:00"),
    ("high", "2026-04-03 14:00", "update", "2026-04-03 16:00"),
    ("high", "2026-04-03 14:00", "delivery", "2026-04-07 14:00"),
    ("low", "2026-04-03 14:00", "response", "2026-04-07 10:00"),
    ("critical", "2026-04-05 22:00", "delivery", "2026-04-06 06:00"),
    # Christmas Eve (a holiday since 2025), Christmas, the weekend: Wednesday 15:00 -> Monday.
    ("high", "2026-12-23 15:00", "response", "2026-12-23 16:00"),
    ("high", "2026-12-23 15:00", "update", "2026-12-28 09:00"),
    ("high", "2026-12-23 15:00", "delivery", "2026-12-28 15:00"),
    # Spring forward (Sun Mar 29): 24x7 counts elapsed hours, so the local clock shows one hour more.
    ("critical", "2026-03-28 23:30", "response", "2026-03-29 00:30"),
    ("critical", "2026-03-28 23:30", "delivery", "2026-03-29 08:30"),
    ("critical", "2026-03-29 01:30", "response", "2026-03-29 03:30"),
    ("high", "2026-03-28 23:30", "response", "2026-03-30 09:00"),
    ("high", "2026-03-28 23:30", "delivery", "2026-03-30 16:00"),
    ("high", "2026-03-27 15:00", "update", "2026-03-30 09:00"),
    ("high", "2026-03-27 15:00", "delivery", "2026-03-30 15:00"),
    # Fall back (Sun Oct 25): 01:30 CEST is 23:30Z; one hour later is the first 02:30 (CEST), eight hours
    # later is 08:30 CET, not 09:30.
    ("critical", "2026-10-24T23:30:00Z", "response", "2026-10-25T00:30:00Z"),
    ("critical", "2026-10-24T23:30:00Z", "delivery", "2026-10-25 08:30"),
    ("high", "2026-10-23 15:00", "response", "2026-10-23 16:00"),
    ("high", "2026-10-23 15:00", "update", "2026-10-26 09:00"),
    ("high", "2026-10-23 15:00", "delivery", "2026-10-26 15:00"),
    ("low", "2026-10-24 12:00", "response", "2026-10-26 12:00"),
]


@pytest.mark.parametrize(("priority", "opened", "kind", "expected"), CASES)
def test_deadline_matches_the_hand_computed_value(
    priority: str, opened: str, kind: str, expected: str
) -> None:
    assert due(priority, opened, kind) == at(expected)


@pytest.mark.parametrize(
    ("confirmed", "expected"),
    [
        ("2026-11-24 10:00", "2026-11-25 16:00"),  # Tuesday -> Wednesday's close
        ("2026-11-27 10:00", "2026-11-30 16:00"),  # Friday -> Monday
        ("2026-11-10 10:00", "2026-11-12 16:00"),  # the next day is Independence Day
        ("2026-04-03 20:00", "2026-04-07 16:00"),  # Good Friday evening -> past Easter Monday
        ("2026-10-23 12:00", "2026-10-26 16:00"),  # over the fall-back weekend: 16:00 CET
    ],
)
def test_next_business_day_delivery_is_the_close_of_the_next_working_day(
    confirmed: str, expected: str
) -> None:
    policy = SlaPolicy({"high": PriorityPolicy("8x5", 1, 2, 8, delivery="next-business-day")})
    moment = at(confirmed)
    times = TicketTimes("high", "confirmed", moment, responded_at=moment, confirmed_at=moment)
    assert deadlines(policy, CALENDAR, times).delivery_due == at(expected)


def test_a_later_delivery_date_the_user_accepted_replaces_the_computed_one() -> None:
    moment, accepted = at("2026-11-24 10:00"), at("2026-12-02 12:00")
    times = TicketTimes(
        "critical", "confirmed", moment, responded_at=moment, confirmed_at=moment, delivery_accepted=accepted
    )
    assert deadlines(POLICY, CALENDAR, times).delivery_due == accepted


@pytest.mark.parametrize(
    ("delivered", "expected"),
    [
        ("2026-11-24 10:00", "2026-12-02 00:00"),  # through the end of Tuesday Dec 1
        ("2026-10-21 12:00", "2026-10-29 00:00"),  # across the fall-back change: midnight CET
        ("2026-03-25 09:00", "2026-04-02 00:00"),  # across spring-forward: midnight CEST
    ],
)
def test_the_faulty_unit_is_due_back_by_the_end_of_the_seventh_day(delivered: str, expected: str) -> None:
    moment = at(delivered)
    times = TicketTimes(
        "critical", "delivered", moment, responded_at=moment, confirmed_at=moment, delivered_at=moment
    )
    assert deadlines(POLICY, CALENDAR, times).return_due == at(expected)


def test_a_ticket_is_ok_then_warning_then_breached_as_its_response_deadline_nears() -> None:
    times = TicketTimes("critical", "open", at("2026-11-24 10:00"))
    pending = running(times, deadlines(POLICY, CALENDAR, times))
    assert list(pending) == ["response"]
    assert state_at(POLICY, pending, at("2026-11-24 10:30")) == SLA_OK
    assert state_at(POLICY, pending, at("2026-11-24 10:50")) == SLA_WARNING
    assert state_at(POLICY, pending, at("2026-11-24 11:00") + timedelta(seconds=1)) == SLA_BREACHED


def test_responding_stops_the_response_clock_and_starts_the_update_clock() -> None:
    moment = at("2026-11-24 10:00")
    times = TicketTimes("critical", "responded", moment, responded_at=moment + timedelta(minutes=20))
    pending = running(times, deadlines(POLICY, CALENDAR, times))
    assert pending == {"update": at("2026-11-24 11:20")}


def test_a_resolved_ticket_has_no_running_deadline() -> None:
    moment = at("2026-11-24 10:00")
    times = TicketTimes("high", "resolved", moment, responded_at=moment)
    assert running(times, deadlines(POLICY, CALENDAR, times)) == {}
