"""The engineers' REST endpoints: tickets moved along, opened by hand; contracts and maintenance windows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from collector.api.app import create_app
from collector.ingest.pipeline import Ingest
from collector.metrics import Metrics
from collector.store.schema import outbox
from tests.support.collector import T0, AppClient, Clock, FakeAgent


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(engine: Engine, clock: Clock) -> AppClient:
    return AppClient(create_app(engine, now=clock))


@pytest.fixture
def device(engine: Engine, metrics: Metrics) -> None:
    ingest = Ingest(engine, metrics, "hezo/v1")
    ingest.handle(*FakeAgent().birth(), received_at=T0)


def open_low(client: AppClient) -> str:
    response = client.request(
        "POST",
        "/api/tickets",
        {
            "site": "hq",
            "agent": "room-101-pc",
            "device": "rally-bar-1",
            "summary": "How to pair a Tap?",
            "by": "ann",
        },
    )
    assert response.status_code == 201, response.text
    number: str = response.json()["number"]
    return number


def test_a_ticket_opened_by_hand_is_low_and_carries_the_device_identity(
    client: AppClient, device: None
) -> None:
    number = open_low(client)
    ticket = client.get(f"/api/tickets/{number}").json()
    assert (ticket["priority"], ticket["serial"], ticket["contract"], ticket["opened_by"]) == (
        "low",
        "2034FH1002R2",
        "HZ-2026-0042",
        "test-admin",  # the authenticated user, not the body's "by" (ignored)
    )
    assert ticket["response_due"] == "2026-11-25T11:00:00.000Z"  # Tue 22:00 CET + 4 working hours


def test_two_questions_about_one_device_are_two_tickets(client: AppClient, device: None) -> None:
    assert open_low(client) != open_low(client)


def test_a_step_moves_the_ticket_and_records_who_and_when(
    client: AppClient, device: None, clock: Clock
) -> None:
    number = open_low(client)
    clock.advance(600)
    response = client.request("POST", f"/api/tickets/{number}/respond", {"by": "bob", "text": "Called back"})
    assert response.status_code == 200, response.text
    ticket = response.json()
    assert ticket["status"] == "responded"
    assert ticket["entries"][-1] | {"text": "Called back"} == {
        "at": "2026-11-24T21:10:00.000Z",
        "kind": "respond",
        "text": "Called back",
        "by": "test-admin",
        "sla_state": "ok",
    }


def test_an_illegal_step_is_409_with_the_reason(client: AppClient, device: None) -> None:
    number = open_low(client)
    response = client.request("POST", f"/api/tickets/{number}/ship", {"by": "bob"})
    assert response.status_code == 409
    assert "'ship' is allowed only when it is confirmed" in response.json()["detail"]


def test_confirming_a_low_ticket_is_refused(client: AppClient, device: None) -> None:
    number = open_low(client)
    response = client.request("POST", f"/api/tickets/{number}/confirm", {"by": "bob"})
    assert response.status_code == 409
    assert "not a fault" in response.json()["detail"]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/api/tickets/HZ-999999/respond", {"by": "bob"}, 404),
        ("/api/tickets/HZ-000001/fly", {"by": "bob"}, 404),
        ("/api/tickets/HZ-000001/respond", {"deliver_by": "2026-12-01T12:00:00+01:00"}, 422),
        ("/api/tickets/HZ-000001/respond", {"by": "bob", "colour": "red"}, 422),
        ("/api/tickets/HZ-000001/notes", {"by": "bob", "text": ""}, 422),
        ("/api/tickets/HZ-000001/priority", {"priority": "urgent"}, 422),
        ("/api/tickets/HZ-000001/priority", {"priority": "low"}, 409),  # it is Low already
        ("/api/tickets/HZ-999999/priority", {"priority": "high"}, 404),
        ("/api/tickets", {"site": "hq", "summary": "x", "by": "ann", "priority": "urgent"}, 422),
        (
            "/api/tickets",
            {"site": "hq", "device": "nope", "agent": "room-101-pc", "summary": "x", "by": "a"},
            422,
        ),
    ],
)
def test_bad_input_is_a_4xx_with_a_reason(
    client: AppClient, device: None, path: str, body: dict[str, str], status: int
) -> None:
    open_low(client)
    response = client.request("POST", path, body)
    assert response.status_code == status
    assert response.json()["detail"]


def test_a_priority_raised_moves_the_deadlines_and_is_told_as_its_own_event(
    client: AppClient, engine: Engine, device: None, clock: Clock
) -> None:
    number = open_low(client)
    clock.advance(300)
    response = client.request(
        "POST", f"/api/tickets/{number}/priority", {"priority": "critical", "text": "The room cannot call."}
    )
    assert response.status_code == 200, response.text
    ticket = response.json()
    assert ticket["priority"] == "critical"
    assert ticket["response_due"] == "2026-11-24T22:00:00.000Z"  # 1 h from opening, 24x7, not 4 working h
    assert ticket["entries"][-1] == {
        "at": "2026-11-24T21:05:00.000Z",
        "kind": "priority",
        "text": "Priority changed from Low to Critical by test-admin: The room cannot call.",
        "by": "test-admin",
        "sla_state": "ok",
    }
    with engine.connect() as conn:
        events = conn.execute(select(outbox.c.event).order_by(outbox.c.id)).scalars().all()
    assert events == ["opened", "priority-changed"]


def test_a_priority_cannot_change_once_the_fault_is_confirmed(client: AppClient, device: None) -> None:
    response = client.request(
        "POST", "/api/tickets", {"site": "hq", "summary": "No picture", "priority": "high"}
    )
    number = response.json()["number"]
    assert client.request("POST", f"/api/tickets/{number}/confirm", {}).status_code == 200
    response = client.request("POST", f"/api/tickets/{number}/priority", {"priority": "critical"})
    assert response.status_code == 409
    assert response.json()["detail"] == (
        f"ticket {number} is confirmed: its priority may change only when it is open, recovered, responded"
    )


def test_an_accepted_delivery_date_in_the_past_is_refused(client: AppClient, device: None) -> None:
    response = client.request(
        "POST", "/api/tickets", {"site": "hq", "summary": "Camera dead", "by": "ann", "priority": "high"}
    )
    number = response.json()["number"]
    past = (T0 - timedelta(days=1)).isoformat()
    response = client.request("POST", f"/api/tickets/{number}/confirm", {"by": "bob", "deliver_by": past})
    assert response.status_code == 422
    assert "future" in response.json()["detail"]


def test_a_note_is_added_in_any_status(client: AppClient, device: None) -> None:
    number = open_low(client)
    client.request("POST", f"/api/tickets/{number}/resolve", {"by": "bob"})
    client.request("POST", f"/api/tickets/{number}/close", {"by": "bob"})
    response = client.request(
        "POST", f"/api/tickets/{number}/notes", {"by": "bob", "text": "Customer thanked us"}
    )
    assert response.status_code == 200
    assert response.json()["entries"][-1]["kind"] == "note"


def test_contracts_are_registered_listed_and_removed(client: AppClient) -> None:
    response = client.request("PUT", "/api/contracts/HZ-1", {"start": "2025-03-01", "years": 2})
    assert response.json() == {"number": "HZ-1", "ends": "2027-03-01"}
    [listed] = client.get("/api/contracts").json()
    assert (listed["number"], listed["state"]) == ("HZ-1", "active")
    assert client.request("DELETE", "/api/contracts/HZ-1").status_code == 204
    assert client.request("DELETE", "/api/contracts/HZ-1").status_code == 404


def test_a_six_year_contract_is_refused(client: AppClient) -> None:
    response = client.request("PUT", "/api/contracts/HZ-1", {"start": "2025-03-01", "years": 6})
    assert response.status_code == 422


def test_a_maintenance_window_is_added_and_a_bad_one_refused_with_the_reason(client: AppClient) -> None:
    good = {"name": "night", "site": "hq", "days": ["mon", "fri"], "start": "22:00", "end": "06:00"}
    assert client.request("POST", "/api/maintenance", good).status_code == 201
    again = client.request("POST", "/api/maintenance", good)
    assert (again.status_code, again.json()["detail"]) == (
        422,
        "a maintenance window named 'night' exists already",
    )
    bad = client.request(
        "POST", "/api/maintenance", {"name": "x", "site": "hq", "days": ["mon"], "start": "22:00"}
    )
    assert bad.status_code == 422
    assert "needs days, start and end" in bad.json()["detail"]
    [window] = client.get("/api/maintenance").json()
    assert (window["name"], window["days"], window["source"]) == ("night", ["mon", "fri"], "api")


def test_the_page_shows_deadlines_sla_state_and_the_timeline(client: AppClient, device: None) -> None:
    number = open_low(client)
    client.request("POST", f"/api/tickets/{number}/respond", {"by": "bob", "text": "Called the reporter"})
    page = client.get("/").text
    assert "Next update" in page
    assert "Called the reporter" in page
    assert "sla-ok" in page


def test_the_sla_terms_are_published(client: AppClient) -> None:
    terms = client.get("/api/sla").json()
    assert terms["priorities"]["high"] == {
        "window": "8x5",
        "response_hours": 1.0,
        "update_hours": 2.0,
        "delivery_hours": 8.0,
        "delivery": "hours",
    }
    assert terms["default_site"]["timezone"] == "Europe/Warsaw"
