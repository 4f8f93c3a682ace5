"""The rt sink against a real Request Tracker 5 (Debian's, on a free loopback port, one per test session and
worker, a queue per test): the ticket it opens there, the comments later events add, what engineers write
and resolve in RT coming back to hezo, and answers told apart (refused, or away)."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.sinks.base import Delivered, DeskChange, Failed, Link, Retry
from collector.sinks.rt import RtDesk, RtOptions
from tests.support.desks import Hezo
from tests.support.mosquitto import free_port
from tests.support.notices import just_opened, kept, notice, opened
from tests.support.rt import RequestTracker

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RequestTracker]:
    server = RequestTracker(tmp_path_factory.mktemp("rt"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def queue(rt: RequestTracker) -> str:
    return rt.new_queue()


def desk(rt: RequestTracker, queue: str, **changes: Any) -> RtDesk:
    options = {"type": "rt", "url": rt.url, "token": rt.tokens["hezo"], "queue": queue, **changes}
    return kept(RtDesk(RtOptions.model_validate(options)))


def test_a_hezo_ticket_opens_an_rt_ticket_in_the_queue_with_its_subject_priority_and_facts(
    rt: RequestTracker, queue: str
) -> None:
    link = opened(desk(rt, queue))
    ticket = rt.ticket(link.remote_id)
    assert link.remote_url == f"{rt.url}/Ticket/Display.html?id={link.remote_id}"
    assert rt.call("root", "GET", f"/queue/{ticket['Queue']['id']}").json()["Name"] == queue
    assert ticket["Subject"] == "HZ-000042 Critical: rally-bar at hq"
    assert ticket["Priority"] == "100"
    [(kind, author, text)] = rt.said(link.remote_id)
    assert (kind, author) == ("Create", "hezo")
    assert text.startswith("Rally Bar is down: connection refused\n")
    assert "Serial:      2034FH1002R2" in text
    assert "Contract:    HZ-C-1" in text
    assert "Response by: 2026-12-04 16:30 CET" in text  # 15:30 UTC in the site's zone (Warsaw)
    assert text.rstrip().endswith("https://hezo.example/api/tickets/HZ-000042")


def test_priorities_map_to_the_numbers_configured(rt: RequestTracker, queue: str) -> None:
    sink = desk(rt, queue, priorities={"low": 20})
    low = just_opened(priority="low")
    outcome = sink.send(low)
    assert isinstance(outcome, Delivered)
    assert outcome.link is not None
    assert rt.ticket(outcome.link.remote_id)["Priority"] == "20"


def test_later_events_become_comments_on_the_rt_ticket(rt: RequestTracker, queue: str) -> None:
    sink = desk(rt, queue)
    link = opened(sink)
    respond = notice("respond", link=link, entry={**notice().entry, "text": "On it.", "by": "eve"})
    outcome = sink.send(respond)
    assert isinstance(outcome, Delivered)
    assert outcome.remote_ref is not None
    assert outcome.remote_ref.isdigit()  # the RT transaction of the comment
    kind, author, text = rt.said(link.remote_id)[-1]
    assert (kind, author) == ("Comment", "hezo")
    assert text.startswith("HZ-000042: respond\n\nOn it.\n(by eve)")


def test_a_creation_tried_again_finds_the_rt_ticket_it_made(rt: RequestTracker, queue: str) -> None:
    sink = desk(rt, queue)
    first, again = opened(sink), opened(sink)  # as after a crash between sending and recording
    assert first == again
    assert len(rt.tickets(queue)) == 1


def test_comments_made_in_rt_come_back_and_hezo_own_do_not(rt: RequestTracker, queue: str) -> None:
    sink = desk(rt, queue)
    link = opened(sink)
    sink.send(notice("respond", link=link))
    rt.comment(link.remote_id, "Called the site: the bar is unplugged.")
    rt.comment(
        link.remote_id, "<p>Replacement <b>shipped</b> &amp; tracked.</p>", kind="correspond", html=True
    )
    change = sink.changes(link)
    assert isinstance(change, DeskChange)
    assert change.comments == [
        ("alice", "Called the site: the bar is unplugged."),
        ("alice", "Replacement shipped & tracked."),
    ]
    assert change.resolved_by is None
    assert change.status == "open"
    # Read from where it stopped, nothing is new.
    again = sink.changes(Link(link.remote_id, link.remote_url, change.cursor))
    assert isinstance(again, DeskChange)
    assert again.comments == []
    assert again.cursor == change.cursor


def test_what_engineers_write_and_resolve_in_rt_reaches_the_hezo_ticket(
    rt: RequestTracker, queue: str, tmp_path: Path
) -> None:
    hezo = Hezo(tmp_path, "rt", desk(rt, queue))
    number = hezo.open_ticket()
    hezo.drain()
    [made] = rt.tickets(queue)
    assert made["Subject"] == f"{number} High: rally-bar at hq"
    hezo.step(number, "respond")
    hezo.drain()
    rt.comment(made["id"], "Power cycled it; still dead.", kind="correspond")
    rt.set_status(made["id"], "resolved")
    assert hezo.follow() == 2
    assert hezo.ticket(number)["status"] == "resolved"
    assert hezo.entries(number)[-2:] == [
        ("note", "alice via rt", "Power cycled it; still dead."),
        ("resolve", "alice via rt", f"Resolved in rt ({made['id']}) by alice."),
    ]
    # The note and the resolution came from RT: nothing goes back there, and nothing is read twice.
    hezo.drain()
    assert [kind for kind, _, _ in rt.said(made["id"])] == ["Create", "Comment", "Correspond"]
    assert hezo.follow() == 0


def test_a_hezo_ticket_resolved_resolves_the_rt_ticket_and_says_why(
    rt: RequestTracker, queue: str, tmp_path: Path
) -> None:
    hezo = Hezo(tmp_path, "rt", desk(rt, queue))
    number = hezo.open_ticket()
    hezo.step(number, "respond")
    hezo.step(number, "resolve")
    hezo.drain()
    [made] = rt.tickets(queue)
    assert made["Status"] == "resolved"
    kind, author, text = rt.said(made["id"])[-1]
    assert (kind, author) == ("Comment", "hezo")
    assert text.startswith(f"{number}: resolve")
    # Resolved by hezo itself: nothing comes back, and the ticket is no longer followed.
    assert hezo.follow() == 0
    assert hezo.entries(number)[-1][:2] == ("resolve", "eve")


def test_a_resolution_sent_again_changes_the_status_once_and_an_rt_ticket_resolved_already_gets_a_comment(
    rt: RequestTracker, queue: str
) -> None:
    sink = desk(rt, queue)
    link = opened(sink)
    for _ in range(2):  # as after a crash between sending and recording
        assert isinstance(sink.send(notice("resolve", link=link)), Delivered)
    assert isinstance(sink.send(notice("closed", link=link)), Delivered)
    assert rt.ticket(link.remote_id)["Status"] == "resolved"
    assert [kind for kind, _, _ in rt.said(link.remote_id)] == ["Create", "Comment", "Comment", "Comment"]
    changes = [
        item
        for item in rt.call(
            "root", "GET", f"/ticket/{link.remote_id}/history", params={"fields": "Type,NewValue"}
        ).json()["items"]
        if item["Type"] == "Status"
    ]
    assert [item["NewValue"] for item in changes] == ["resolved"]


def test_an_rt_ticket_rejected_by_people_is_left_alone(rt: RequestTracker, queue: str) -> None:
    sink = desk(rt, queue)
    link = opened(sink)
    rt.set_status(link.remote_id, "rejected")
    outcome = sink.send(notice("resolve", link=link))
    assert outcome == Delivered(remote_ref="already rejected")
    assert rt.ticket(link.remote_id)["Status"] == "rejected"
    assert [kind for kind, _, _ in rt.said(link.remote_id)] == ["Create"]


def test_without_the_right_to_modify_the_resolution_is_refused_in_rts_words(
    rt: RequestTracker, queue: str
) -> None:
    sink = desk(rt, queue, token=rt.tokens["clerk"])
    link = opened(sink)
    outcome = sink.send(notice("resolve", link=link))
    assert isinstance(outcome, Failed)
    assert (
        outcome.reason
        == f"RT did not resolve ticket {link.remote_id}: Ticket {link.remote_id}: Permission Denied"
    )
    assert rt.ticket(link.remote_id)["Status"] == "new"
    assert [kind for kind, _, _ in rt.said(link.remote_id)] == ["Create"]  # no comment before the status


def test_with_resolve_off_a_resolution_is_only_a_comment(rt: RequestTracker, queue: str) -> None:
    sink = desk(rt, queue, token=rt.tokens["clerk"], resolve=False)
    link = opened(sink)
    assert isinstance(sink.send(notice("resolve", link=link)), Delivered)
    assert rt.ticket(link.remote_id)["Status"] == "new"
    assert [kind for kind, _, _ in rt.said(link.remote_id)] == ["Create", "Comment"]


def test_a_priority_changed_in_hezo_changes_the_rt_priority_then_comments(
    rt: RequestTracker, queue: str
) -> None:
    sink = desk(rt, queue)
    link = opened(sink)  # Critical: 100
    changed = notice("priority-changed", link=link, ticket={**notice().ticket, "priority": "high"})
    assert isinstance(sink.send(changed), Delivered)
    assert rt.ticket(link.remote_id)["Priority"] == "50"
    assert [kind for kind, _, _ in rt.said(link.remote_id)] == ["Create", "Comment"]
    refused = desk(rt, queue, token=rt.tokens["clerk"]).send(
        notice("priority-changed", link=link, ticket={**notice().ticket, "priority": "low"})
    )
    assert isinstance(refused, Failed)
    assert refused.reason.startswith(f"RT did not change the priority of ticket {link.remote_id}: ")
    assert "Permission Denied" in refused.reason
    assert rt.ticket(link.remote_id)["Priority"] == "50"


def test_a_wrong_token_is_refused_for_good(rt: RequestTracker, queue: str) -> None:
    sink = desk(rt, queue, token="1-27-00000000000000000000000000000000")
    outcome = sink.send(notice())
    assert isinstance(outcome, Failed)
    assert "HTTP 401" in outcome.reason


def test_a_queue_that_does_not_exist_is_refused_for_good(rt: RequestTracker) -> None:
    outcome = desk(rt, "no-such-queue").send(notice())
    assert isinstance(outcome, Failed)
    assert outcome.reason.startswith("HTTP 403")
    assert "no-such-queue" in outcome.reason


def test_rt_away_is_retried_for_sending_and_for_reading_back(rt: RequestTracker) -> None:
    sink = desk(rt, "rooms", url=f"http://127.0.0.1:{free_port()}")
    assert isinstance(sink.send(notice()), Retry)
    assert isinstance(sink.changes(Link("1")), Retry)
