"""The ticket board and the ticket page as a user reads them: order by next deadline, times in the site's
zone, filters, the cause in words, the actions a role allows, and a customer's user kept to its own."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import Engine, insert

from collector import tickets
from collector.api.app import create_app
from collector.registry import contracts
from collector.store.schema import CAUSE_DEVICE_DOWN, CAUSE_DEVICE_UNSTABLE, agents, devices
from tests.support.collector import T0, AppClient, Clock


def _device(conn: object, site: str, device: str, contract: str, **extra: object) -> None:
    conn.execute(insert(agents).values(site=site, agent="pc", online=True))  # type: ignore[attr-defined]
    values = {"site": site, "agent": "pc", "device": device, "state": "up", "contract": contract, **extra}
    conn.execute(insert(devices).values(**values))  # type: ignore[attr-defined]


@pytest.fixture
def store(engine: Engine) -> Engine:
    """Acme: a Rally (High, unstable, due 22:00 UTC) and a bar (Critical, down, due 22:30 UTC); Globex: a bar
    (Critical, due 21:30 UTC) and a closed Low ticket."""
    with engine.begin() as conn:
        _device(conn, "acme-hq", "rally", "C-ACME", model="rally", name="Rally system", serial="SN-R1")
        conn.execute(
            insert(devices).values(site="acme-hq", agent="pc", device="bar", state="down", contract="C-ACME")
        )
        _device(conn, "globex-hq", "bar", "C-GLOBEX", model="rally-bar")
        for number, customer in (("C-ACME", "Acme"), ("C-GLOBEX", "Globex")):
            contracts.put(conn, contracts.values(number=number, start=T0.date(), years=3, customer=customer))
        reasons = [
            "degraded since 2026-11-24T20:00:00+00:00: Rally system incomplete: missing table-hub 046d:088f"
        ]
        opened = [
            ("acme-hq", "rally", "high", CAUSE_DEVICE_UNSTABLE, {"reasons": reasons, "checks": []}, 60),
            (
                "acme-hq",
                "bar",
                "critical",
                CAUSE_DEVICE_DOWN,
                [{"driver": "icmp", "ok": False, "detail": "no reply"}],
                90,
            ),
            ("globex-hq", "bar", "critical", CAUSE_DEVICE_DOWN, [], 30),
        ]
        for site, device, priority, cause, evidence, due_in in opened:
            tickets.open_ticket(
                conn,
                tickets.Subject(
                    site, "pc", device, model=None, contract="C-ACME" if site == "acme-hq" else "C-GLOBEX"
                ),
                priority=priority,
                cause=cause,
                opened_at=T0,
                response_due=T0 + timedelta(minutes=due_in),
                evidence=evidence,
                text="opened",
            )
        closed = tickets.open_ticket(
            conn,
            tickets.Subject("globex-hq", "pc", "bar"),
            priority="low",
            cause="manual",
            opened_at=T0,
            response_due=T0 + timedelta(hours=4),
            evidence=None,
            text="How do I pair a Tap?",
            summary="How do I pair a Tap?",
        )
        tickets.close(conn, int(closed.removeprefix("HZ-")), T0 + timedelta(minutes=5))
    return engine


@pytest.fixture
def app(store: Engine) -> object:
    return create_app(store, now=Clock(T0))


def _order(page: str) -> list[str]:
    return re.findall(r'<tr id="row-(HZ-\d+)"', page)


def test_the_board_lists_open_tickets_by_the_deadline_that_runs_out_first(app: object) -> None:
    page = AppClient(app).get("/board").text
    assert _order(page) == ["HZ-000003", "HZ-000001", "HZ-000002"]


def test_a_responded_ticket_moves_to_its_next_update(store: Engine) -> None:
    clock = Clock(T0)
    engineer = AppClient(create_app(store, now=clock), role="engineer")
    clock.advance(45 * 60)  # a Critical's updates are hourly: the next one is due at 22:45 UTC
    assert engineer.request("POST", "/api/tickets/HZ-000003/respond", {}).status_code == 200
    page = engineer.get("/board").text
    assert _order(page) == ["HZ-000001", "HZ-000002", "HZ-000003"]
    assert re.search(r'update:\s+<time datetime="2026-11-24T22:45:00Z"', page)


def test_times_are_in_the_sites_zone_with_utc_on_hover_and_a_countdown(app: object) -> None:
    page = AppClient(app).get("/board").text
    # 21:30 UTC is 22:30 in Warsaw (CET), the default calendar's zone
    assert '<time datetime="2026-11-24T21:30:00Z" title="2026-11-24 21:30:00 UTC" data-countdown="">' in page
    assert "2026-11-24 22:30 CET</time>" in page


def test_the_cause_is_said_in_words(app: object) -> None:
    page = AppClient(app).get("/board").text
    assert "Rally system: missing table-hub" in page
    assert "not responding (icmp: no reply)" in page
    assert "device-unstable" not in page


def test_closed_tickets_are_on_their_own_list(app: object) -> None:
    client = AppClient(app)
    assert "HZ-000004" not in client.get("/board").text
    assert _order(client.get("/board?which=closed").text) == ["HZ-000004"]
    assert len(_order(client.get("/board?which=all").text)) == 4


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("site=acme-hq", ["HZ-000001", "HZ-000002"]),
        ("priority=high", ["HZ-000001"]),
        ("customer=Globex", ["HZ-000003"]),
        ("status=closed&which=all", ["HZ-000004"]),
    ],
)
def test_the_filters_narrow_the_board(app: object, query: str, shown: list[str]) -> None:
    assert _order(AppClient(app).get(f"/board?{query}").text) == shown


def test_a_filter_value_out_of_bounds_is_refused_with_the_reason(app: object) -> None:
    answer = AppClient(app).get("/board?priority=urgent")
    assert answer.status_code == 422
    assert "priority" in answer.text


def test_a_customers_user_sees_only_its_own_tickets_and_sites(app: object) -> None:
    acme = AppClient(app, role="viewer", customer="Acme")
    page = acme.get("/board?which=all").text
    assert _order(page) == ["HZ-000001", "HZ-000002"]
    assert "globex-hq" not in page
    assert "Globex" not in page
    assert acme.get("/tickets/HZ-000003").status_code == 404


def test_the_ticket_page_offers_an_engineer_the_steps_its_status_allows(app: object) -> None:
    page = AppClient(app, role="engineer").get("/tickets/HZ-000002").text
    steps = re.findall(r'data-step="(\w+)"', page)
    assert steps == ["respond", "confirm", "resolve"]
    assert 'data-api="/api/tickets/HZ-000002/notes"' in page
    assert 'data-api="/api/tickets/HZ-000002/priority"' in page  # before the fault is confirmed
    assert "Rally" not in page  # another device's ticket


def test_a_viewer_sees_the_ticket_but_no_action(app: object) -> None:
    page = AppClient(app, role="viewer").get("/tickets/HZ-000001").text
    assert "Rally system: missing table-hub" in page
    assert "data-step" not in page
    assert "data-api" not in page
    assert "data-command" not in page


def test_a_step_taken_shows_on_the_ticket_page(app: object) -> None:
    engineer = AppClient(app, role="engineer")
    answer = engineer.request("POST", "/api/tickets/HZ-000002/respond", {"text": "Called the site"})
    assert answer.status_code == 200
    page = engineer.get("/tickets/HZ-000002").text
    assert "Called the site" in page
    assert re.findall(r'data-step="(\w+)"', page) == ["confirm", "resolve"]
    engineer.request("POST", "/api/tickets/HZ-000002/confirm", {})
    confirmed = engineer.get("/tickets/HZ-000002").text
    assert re.findall(r'data-step="(\w+)"', confirmed) == ["ship"]
    assert "/priority" not in confirmed  # a confirmed fault keeps its priority


def test_the_board_is_a_page_at_a_time(store: Engine) -> None:
    from collector.tickets import board

    with store.connect() as conn:
        first = board.board(conn, board.BoardFilter(which="all"), page_size=3)
        second = board.board(conn, board.BoardFilter(which="all"), page=2, page_size=3)
    assert (first.total, first.pages, len(first.rows), len(second.rows)) == (4, 2, 3, 1)
    assert second.rows[0]["number"] == "HZ-000004"
