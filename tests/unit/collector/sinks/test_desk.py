"""What every desk ticket says, and how a desk ticket made for a hezo ticket is told from another's."""

from datetime import timedelta

from collector.sinks import desk
from collector.sinks.rt import text_of_html
from tests.support.notices import OPENED, notice


def test_the_subject_leads_with_the_number_then_priority_device_and_site() -> None:
    assert desk.subject(notice()) == "HZ-000042 Critical: rally-bar at hq"
    assert (
        desk.subject(notice(ticket={**notice().ticket, "device": None})) == "HZ-000042 Critical: site at hq"
    )


def test_the_description_has_the_facts_and_the_deadlines_in_the_site_time_zone() -> None:
    text = desk.description(notice())
    assert text.splitlines()[:2] == ["Rally Bar is down: connection refused", ""]
    assert "Site:        hq, Boardroom" in text
    assert "Device:      rally-bar (rally-bar)" in text
    assert "Opened:      2026-12-04 15:30 CET" in text
    assert "Response by: 2026-12-04 16:30 CET" in text
    assert "Update by" not in text  # a deadline the ticket does not have is left out
    assert text.endswith("\nhttps://hezo.example/api/tickets/HZ-000042")


def test_a_comment_says_the_event_who_and_where() -> None:
    text = desk.comment(notice("respond", entry={**notice().entry, "text": "On it.", "by": "eve"}))
    assert text == "HZ-000042: respond\n\nOn it.\n(by eve)\n\nhttps://hezo.example/api/tickets/HZ-000042"
    assert "(by" not in desk.comment(notice("sla-warning"))  # the collector's own entries name nobody


def test_a_desk_ticket_is_this_one_when_it_carries_the_number_and_is_newer() -> None:
    mine = notice()
    assert desk.made_for(mine, "HZ-000042 Critical: rally-bar at hq", OPENED + timedelta(seconds=5))
    assert desk.made_for(mine, "HZ-000042 Critical: rally-bar at hq", OPENED - timedelta(minutes=5))  # clocks
    assert not desk.made_for(mine, "HZ-000042 Critical: rally-bar at hq", OPENED - timedelta(days=3))
    assert not desk.made_for(mine, "HZ-0000421 Low: tap at hq", OPENED)
    assert not desk.made_for(mine, "Re: HZ-000042", OPENED)


def test_html_bodies_read_as_text_a_line_per_paragraph() -> None:
    html = "<p>Called the site.</p><p>Bar <b>unplugged</b> &amp; back on.<br>Closing.</p>"
    assert text_of_html(html) == "Called the site.\nBar unplugged & back on.\nClosing."
