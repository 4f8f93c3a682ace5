"""The servicenow sink against a fake instance that follows ServiceNow's published Table API
(tests/support/servicenow.py), over real HTTP on loopback: the incident it opens, work notes for later events,
the incident resolved with the hezo ticket, what engineers write and resolve there coming back to hezo, and
answers told apart."""

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from collector.sinks.base import Delivered, DeskChange, Failed, Link, Retry
from collector.sinks.servicenow import ServiceNowDesk, ServiceNowOptions
from tests.support import servicenow
from tests.support.desks import Hezo
from tests.support.fakeapi import running
from tests.support.mosquitto import free_port
from tests.support.notices import just_opened, kept, notice, opened
from tests.support.servicenow import FakeServiceNow

pytestmark = pytest.mark.integration

CALLER = "681ccaf9c0a8016400b98a06818d57c7"
GROUP = "287ebd7da9fe198100f92cc8d1d2154e"


@pytest.fixture
def instance() -> Iterator[FakeServiceNow]:
    with running(FakeServiceNow()) as fake:
        yield fake


def desk(url: str, **changes: Any) -> ServiceNowDesk:
    options = {
        "type": "servicenow",
        "url": url,
        "username": servicenow.USERNAME,
        "password": servicenow.PASSWORD,
        **changes,
    }
    return kept(ServiceNowDesk(ServiceNowOptions.model_validate(options)))


def test_a_hezo_ticket_opens_an_incident_correlated_to_it(instance: FakeServiceNow) -> None:
    outcome = desk(instance.url, caller=CALLER, assignment_group=GROUP).send(just_opened())
    assert isinstance(outcome, Delivered)
    [incident] = instance.incidents()
    assert outcome.remote_ref == incident["number"] == "INC0010001"
    assert outcome.link is not None
    assert outcome.link.remote_id == incident["sys_id"]
    assert (
        outcome.link.remote_url == f"{instance.url}/nav_to.do?uri=incident.do%3Fsys_id%3D{incident['sys_id']}"
    )
    assert incident["short_description"] == "HZ-000042 Critical: rally-bar at hq"
    assert (incident["urgency"], incident["impact"]) == ("1", "1")
    assert (incident["correlation_id"], incident["correlation_display"]) == ("HZ-000042", "hezo")
    assert (incident["caller_id"], incident["assignment_group"]) == (CALLER, GROUP)
    assert incident["description"].startswith("Rally Bar is down: connection refused\n")
    assert "Contract:    HZ-C-1" in incident["description"]
    assert "Response by: 2026-12-04 16:30 CET" in incident["description"]
    [call] = instance.made("POST", "/api/now/table/incident")
    expected = base64.b64encode(f"{servicenow.USERNAME}:{servicenow.PASSWORD}".encode()).decode()
    assert call.headers["authorization"] == f"Basic {expected}"
    assert call.headers["content-type"].startswith("application/json")
    assert call.headers["accept"] == "application/json"


@pytest.mark.parametrize(("priority", "urgency", "impact"), [("high", "1", "2"), ("low", "2", "3")])
def test_urgency_and_impact_follow_the_priority(
    instance: FakeServiceNow, priority: str, urgency: str, impact: str
) -> None:
    desk(instance.url).send(just_opened(priority=priority))
    [incident] = instance.incidents()
    assert (incident["urgency"], incident["impact"]) == (urgency, impact)


def test_later_events_become_work_notes(instance: FakeServiceNow) -> None:
    sink = desk(instance.url)
    link = opened(sink)
    outcome = sink.send(notice("respond", link=link, entry={**notice().entry, "text": "On it.", "by": "eve"}))
    assert isinstance(outcome, Delivered)
    [note] = instance.entries(link.remote_id)
    assert (note["element"], note["sys_created_by"]) == ("work_notes", servicenow.USERNAME)
    assert note["value"].startswith("HZ-000042: respond\n\nOn it.\n(by eve)")
    [call] = instance.made("PATCH", f"/api/now/table/incident/{link.remote_id}")
    assert set(call.body) == {"work_notes"}


def test_a_priority_changed_in_hezo_sets_urgency_and_impact_with_the_work_note(
    instance: FakeServiceNow,
) -> None:
    sink = desk(instance.url)
    link = opened(sink)  # Critical: 1, 1
    changed = notice("priority-changed", link=link, ticket={**notice().ticket, "priority": "low"})
    assert isinstance(sink.send(changed), Delivered)
    [incident] = instance.incidents()
    assert (incident["urgency"], incident["impact"]) == ("2", "3")
    [call] = instance.made("PATCH", f"/api/now/table/incident/{link.remote_id}")
    assert set(call.body) == {"work_notes", "urgency", "impact"}


def test_resolving_the_hezo_ticket_resolves_the_incident_once(instance: FakeServiceNow) -> None:
    sink = desk(instance.url, close_code="Solution provided")
    link = opened(sink)
    resolve = notice("resolve", link=link, entry={**notice().entry, "text": "Replaced the bar.", "by": "eve"})
    assert isinstance(sink.send(resolve), Delivered)
    [incident] = instance.incidents()
    assert (incident["state"], incident["close_code"]) == ("6", "Solution provided")
    assert "Replaced the bar." in incident["close_notes"]
    # Closing the hezo ticket afterwards adds a work note to the resolved incident.
    assert isinstance(sink.send(notice("closed", link=link)), Delivered)
    [note] = instance.entries(link.remote_id)
    assert note["value"].startswith("HZ-000042: closed")
    # An incident closed there meanwhile is left as it is.
    instance.tables["incident"][link.remote_id]["state"] = "7"
    closed = sink.send(notice("closed", link=link))
    assert closed == Delivered(remote_ref="already closed")


def test_a_creation_tried_again_finds_the_incident_it_made(instance: FakeServiceNow) -> None:
    sink = desk(instance.url)
    assert opened(sink) == opened(sink)  # as after a crash between sending and recording
    assert len(instance.incidents()) == 1


def test_an_incident_made_before_the_ticket_opened_is_not_taken_for_it(instance: FakeServiceNow) -> None:
    """A collector whose store was reset numbers its tickets from the start again."""
    sink = desk(instance.url)
    instance.clock = lambda: datetime.now(UTC) - timedelta(days=30)
    first = opened(sink)
    instance.clock = lambda: datetime.now(UTC)
    assert opened(sink) != first
    assert len(instance.incidents()) == 2


def test_comments_and_work_notes_come_back_and_hezo_own_do_not(instance: FakeServiceNow) -> None:
    sink = desk(instance.url)
    link = opened(sink)
    sink.send(notice("respond", link=link))
    instance.journal(link.remote_id, "Spare unit found in stock.")
    instance.journal(link.remote_id, "We are sending an engineer.", element="comments")
    change = sink.changes(link)
    assert isinstance(change, DeskChange)
    assert change.comments == [
        ("beth.agent", "Spare unit found in stock."),
        ("beth.agent", "We are sending an engineer."),
    ]
    assert change.resolved_by is None
    assert change.status == "New"
    again = sink.changes(Link(link.remote_id, link.remote_url, change.cursor))
    assert isinstance(again, DeskChange)
    assert again.comments == []


def test_entries_written_in_the_same_second_are_each_read_once(instance: FakeServiceNow) -> None:
    moment = datetime.now(UTC).replace(microsecond=0)
    instance.clock = lambda: moment
    sink = desk(instance.url)
    link = opened(sink)
    instance.journal(link.remote_id, "first")
    change = sink.changes(link)
    assert isinstance(change, DeskChange)
    instance.journal(link.remote_id, "second")  # the Table API's times are to the second: the same one
    later = sink.changes(Link(link.remote_id, link.remote_url, change.cursor))
    assert isinstance(later, DeskChange)
    assert [text for _, text in change.comments + later.comments] == ["first", "second"]


def test_what_engineers_write_and_resolve_in_servicenow_reaches_the_hezo_ticket(
    instance: FakeServiceNow, tmp_path: Path
) -> None:
    hezo = Hezo(tmp_path, "servicenow", desk(instance.url))
    number = hezo.open_ticket()
    hezo.drain()
    [incident] = instance.incidents()
    assert incident["correlation_id"] == number
    instance.journal(incident["sys_id"], "Bar replaced, room tested.")
    instance.resolve(incident["sys_id"])
    assert hezo.follow() == 2
    assert hezo.ticket(number)["status"] == "resolved"
    assert hezo.entries(number)[-2:] == [
        ("note", "beth.agent via servicenow", "Bar replaced, room tested."),
        (
            "resolve",
            "Beth Agent via servicenow",
            f"Resolved in servicenow ({incident['sys_id']}) by Beth Agent.",
        ),
    ]
    hezo.drain()
    assert instance.made("PATCH", ".*") == []  # what came from ServiceNow is not sent back there
    assert hezo.follow() == 0


def test_the_hezo_ticket_resolved_in_hezo_resolves_the_incident(
    instance: FakeServiceNow, tmp_path: Path
) -> None:
    hezo = Hezo(tmp_path, "servicenow", desk(instance.url))
    number = hezo.open_ticket()
    hezo.step(number, "resolve")
    hezo.drain()
    [incident] = instance.incidents()
    assert incident["state"] == "6"
    assert incident["close_code"] == "Solved (Permanently)"


def test_bad_credentials_are_refused_for_good(instance: FakeServiceNow) -> None:
    outcome = desk(instance.url, password="wrong").send(just_opened())
    assert isinstance(outcome, Failed)
    assert outcome.reason.startswith("HTTP 401")
    assert "User Not Authenticated" in outcome.reason


def test_an_incident_that_is_gone_is_refused_for_good(instance: FakeServiceNow) -> None:
    gone = Link("0" * 32)
    outcome = desk(instance.url).send(notice("respond", link=gone))
    assert isinstance(outcome, Failed)
    assert outcome.reason.startswith("HTTP 404")


def test_rate_limits_and_outages_are_retried_after_what_servicenow_says(instance: FakeServiceNow) -> None:
    sink = desk(instance.url)
    instance.fail(429, retry_after="30")
    limited = sink.send(just_opened())
    assert isinstance(limited, Retry)
    assert limited.after == 30.0
    instance.fail(503)
    assert isinstance(sink.send(just_opened()), Retry)
    link = opened(sink)
    instance.fail(500)
    assert isinstance(sink.changes(link), Retry)
    assert len(instance.incidents()) == 1


def test_servicenow_away_is_retried() -> None:
    sink = desk(f"http://127.0.0.1:{free_port()}")
    assert isinstance(sink.send(just_opened()), Retry)
    assert isinstance(sink.changes(Link("0" * 32)), Retry)
