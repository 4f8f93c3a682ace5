"""The jira sink against a fake Jira Service Management site that follows Atlassian's published REST API
(tests/support/jira.py), over real HTTP on loopback: the customer request it raises, the comments later
events add, what agents write and resolve there coming back to hezo, and answers told apart."""

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from collector.sinks.base import Delivered, DeskChange, Failed, Link, Retry
from collector.sinks.jira import JiraDesk, JiraOptions
from tests.support import jira
from tests.support.desks import Hezo
from tests.support.fakeapi import running
from tests.support.jira import FakeJira
from tests.support.mosquitto import free_port
from tests.support.notices import just_opened, kept, notice, opened

pytestmark = pytest.mark.integration


@pytest.fixture
def site() -> Iterator[FakeJira]:
    with running(FakeJira()) as fake:
        yield fake


def desk(url: str, **changes: Any) -> JiraDesk:
    options = {
        "type": "jira",
        "url": url,
        "email": jira.EMAIL,
        "token": jira.TOKEN,
        "service_desk": jira.SERVICE_DESK,
        "request_type": jira.REQUEST_TYPE,
        **changes,
    }
    return kept(JiraDesk(JiraOptions.model_validate(options)))


def test_a_hezo_ticket_raises_a_customer_request_with_its_summary_and_description(site: FakeJira) -> None:
    outcome = desk(site.url).send(just_opened())
    assert isinstance(outcome, Delivered)
    assert outcome.remote_ref == "HZD-1"
    assert outcome.link == Link("HZD-1", f"{site.url}/browse/HZD-1")
    [call] = site.made("POST", "/rest/servicedeskapi/request")
    assert (
        call.headers["authorization"]
        == "Basic " + base64.b64encode(b"hezo@example.net:" + jira.TOKEN.encode()).decode()
    )
    assert call.headers["content-type"].startswith("application/json")
    assert call.body["serviceDeskId"] == "1"
    assert call.body["requestTypeId"] == "10"
    fields = call.body["requestFieldValues"]
    assert fields["summary"] == "HZ-000042 Critical: rally-bar at hq"
    assert fields["description"].startswith("Rally Bar is down: connection refused\n")
    assert "Serial:      2034FH1002R2" in fields["description"]
    assert "Response by: 2026-12-04 16:30 CET" in fields["description"]
    assert "priority" not in fields  # only when the request type's form has it and it is configured


def test_priority_is_set_by_name_when_the_form_has_it() -> None:
    with running(FakeJira(priority_field=True)) as site:
        outcome = desk(site.url, priorities={}).send(just_opened(priority="high"))
        assert isinstance(outcome, Delivered)
        [request] = site.requests()
    assert request.fields["priority"] == {"name": "High"}


def test_a_priority_changed_in_hezo_sets_the_issue_priority_when_priorities_are_configured() -> None:
    with running(FakeJira(priority_field=True)) as site:
        sink = desk(site.url, priorities={})
        link = opened(sink)
        changed = notice("priority-changed", link=link, ticket={**notice().ticket, "priority": "low"})
        assert isinstance(sink.send(changed), Delivered)
        [request] = site.requests()
        assert request.fields["priority"] == {"name": "Low"}
        assert len(request.comments) == 1
        plain = desk(site.url)  # no priorities: only the comment
        assert isinstance(plain.send(changed), Delivered)
        assert len(site.made("PUT", rf"/rest/api/2/issue/{link.remote_id}")) == 1
        assert len(site.requests()[0].comments) == 2


def test_a_field_the_request_type_does_not_have_is_refused_for_good(site: FakeJira) -> None:
    outcome = desk(site.url, priorities={}).send(just_opened())
    assert isinstance(outcome, Failed)
    assert outcome.reason.startswith("HTTP 400")
    assert "Field 'priority' is not valid for this request type" in outcome.reason


def test_later_events_are_internal_comments_unless_configured_public(site: FakeJira) -> None:
    link = opened(desk(site.url))
    internal = desk(site.url).send(notice("respond", link=link, entry={**notice().entry, "text": "On it."}))
    public = desk(site.url, public_comments=True).send(notice("confirm", link=link))
    assert isinstance(internal, Delivered)
    assert isinstance(public, Delivered)
    first, second = site.made("POST", "/rest/servicedeskapi/request/HZD-1/comment")
    assert first.body == {"body": first.body["body"], "public": False}
    assert first.body["body"].startswith("HZ-000042: respond\n\nOn it.")
    assert second.body["public"] is True
    assert internal.remote_ref == site.requests()[0].comments[0]["id"]


def test_a_creation_tried_again_finds_the_request_it_made(site: FakeJira) -> None:
    sink = desk(site.url)
    assert opened(sink) == opened(sink)  # as after a crash between sending and recording
    assert len(site.requests()) == 1


def test_a_request_made_before_the_ticket_opened_is_not_taken_for_it(site: FakeJira) -> None:
    """A collector whose store was reset numbers its tickets from the start again."""
    sink = desk(site.url)
    site.clock = lambda: datetime.now(UTC) - timedelta(days=30)
    assert opened(sink).remote_id == "HZD-1"
    site.clock = lambda: datetime.now(UTC)
    assert opened(sink).remote_id == "HZD-2"


def test_comments_by_agents_come_back_and_hezo_own_do_not(site: FakeJira) -> None:
    sink = desk(site.url)
    link = opened(sink)
    sink.send(notice("respond", link=link))
    site.comment("HZD-1", "Engineer booked for tomorrow.")
    site.comment("HZD-1", "We will replace the bar.", by="Bob Agent", public=True)
    change = sink.changes(link)
    assert isinstance(change, DeskChange)
    assert change.comments == [
        ("Alice Agent", "Engineer booked for tomorrow."),
        ("Bob Agent", "We will replace the bar."),
    ]
    assert change.resolved_by is None
    assert change.status == "Waiting for support"
    again = sink.changes(Link(link.remote_id, link.remote_url, change.cursor))
    assert isinstance(again, DeskChange)
    assert again.comments == []
    assert again.cursor == change.cursor


def test_comments_past_the_first_page_are_read_too(site: FakeJira) -> None:
    sink = desk(site.url)
    link = opened(sink)
    for index in range(60):
        site.comment("HZD-1", f"note {index}")
    change = sink.changes(link)
    assert isinstance(change, DeskChange)
    assert [text for _, text in change.comments] == [f"note {index}" for index in range(60)]


def test_what_agents_write_and_resolve_in_jira_reaches_the_hezo_ticket(
    site: FakeJira, tmp_path: Path
) -> None:
    hezo = Hezo(tmp_path, "jira", desk(site.url))
    number = hezo.open_ticket()
    hezo.drain()
    [request] = site.requests()
    assert request.fields["summary"] == f"{number} High: rally-bar at hq"
    site.comment(request.key, "Shipped a replacement.")
    site.resolve(request.key, by="Alice Agent")
    assert hezo.follow() == 2
    assert hezo.ticket(number)["status"] == "resolved"
    assert hezo.entries(number)[-2:] == [
        ("note", "Alice Agent via jira", "Shipped a replacement."),
        ("resolve", "Alice Agent via jira", f"Resolved in jira ({request.key}) by Alice Agent."),
    ]
    hezo.drain()
    assert site.made("POST", rf"/rest/servicedeskapi/request/{request.key}/comment") == []
    assert hezo.follow() == 0


def test_a_hezo_ticket_resolved_moves_the_issue_to_done_with_a_resolution_and_says_why(
    site: FakeJira, tmp_path: Path
) -> None:
    hezo = Hezo(tmp_path, "jira", desk(site.url))
    number = hezo.open_ticket()
    hezo.step(number, "respond")
    hezo.step(number, "resolve")
    hezo.drain()
    [request] = site.requests()
    assert (request.status, request.category, request.resolution) == ("Resolved", "done", "Done")
    assert request.comments[-1]["body"].startswith(f"{number}: resolve")
    [moved] = site.made("POST", rf"/rest/api/2/issue/{request.key}/transitions")
    assert moved.body == {"transition": {"id": "31"}, "fields": {"resolution": {"name": "Done"}}}
    assert hezo.follow() == 0  # resolved in hezo: not followed any more, nothing comes back


def test_a_resolution_sent_again_moves_the_issue_once_and_a_done_issue_gets_a_comment(site: FakeJira) -> None:
    sink = desk(site.url)
    link = opened(sink)
    for event in ("resolve", "resolve", "closed"):  # the second as after a crash before it was recorded
        assert isinstance(sink.send(notice(event, link=link)), Delivered)
    [request] = site.requests()
    assert request.category == "done"
    assert len(site.made("POST", rf"/rest/api/2/issue/{link.remote_id}/transitions")) == 1
    assert len(request.comments) == 3


def test_a_workflow_without_a_resolution_screen_gets_no_resolution_field() -> None:
    with running(FakeJira(resolution_screen=False)) as fake:
        sink = desk(fake.url)
        link = opened(sink)
        assert isinstance(sink.send(notice("resolve", link=link)), Delivered)
        [moved] = fake.made("POST", rf"/rest/api/2/issue/{link.remote_id}/transitions")
        assert moved.body == {"transition": {"id": "31"}}
        assert fake.requests()[0].category == "done"


def test_a_transition_named_in_the_config_is_the_one_taken_and_one_not_offered_is_refused_for_good(
    site: FakeJira,
) -> None:
    link = opened(desk(site.url))
    refused = desk(site.url, transition="Close for good").send(notice("resolve", link=link))
    assert isinstance(refused, Failed)
    assert refused.reason == (
        f"Jira offers {link.remote_id} no transition to a done status from 'Waiting for support' "
        "(offered: Start work, Resolve this issue); set the jira sink's transition"
    )
    assert site.requests()[0].comments == []  # nothing said before the status moved
    assert isinstance(desk(site.url, transition="resolved").send(notice("resolve", link=link)), Delivered)
    assert site.requests()[0].status == "Resolved"  # found by the status it goes to, in any case


def test_with_resolve_off_a_resolution_is_only_a_comment(site: FakeJira) -> None:
    sink = desk(site.url, resolve=False)
    link = opened(sink)
    assert isinstance(sink.send(notice("resolve", link=link)), Delivered)
    [request] = site.requests()
    assert request.category == "new"
    assert len(request.comments) == 1


def test_bad_credentials_are_refused_for_good(site: FakeJira) -> None:
    outcome = desk(site.url, token="not-the-token").send(just_opened())
    assert isinstance(outcome, Failed)
    assert outcome.reason.startswith("HTTP 401")


def test_an_unknown_service_desk_is_refused_for_good(site: FakeJira) -> None:
    outcome = desk(site.url, service_desk="99").send(just_opened())
    assert isinstance(outcome, Failed)
    assert outcome.reason.startswith("HTTP 404")


def test_rate_limits_and_outages_are_retried_after_what_jira_says(site: FakeJira) -> None:
    sink = desk(site.url)
    site.fail(429, retry_after="7")
    limited = sink.send(just_opened())
    assert isinstance(limited, Retry)
    assert limited.after == 7.0
    site.fail(503)
    assert isinstance(sink.send(just_opened()), Retry)
    link = opened(sink)
    site.fail(503)
    assert isinstance(sink.changes(link), Retry)
    assert len(site.requests()) == 1


def test_jira_away_is_retried() -> None:
    sink = desk(f"http://127.0.0.1:{free_port()}")
    assert isinstance(sink.send(just_opened()), Retry)
    assert isinstance(sink.changes(Link("HZD-1")), Retry)
