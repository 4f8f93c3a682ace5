"""The web page and the JSON API show agents, devices, tickets and rejected messages."""

import pytest
from sqlalchemy import Engine

from collector.api.app import create_app
from collector.incidents.engine import IncidentEngine
from collector.ingest.pipeline import Ingest
from collector.metrics import Metrics
from collector.sinks.settings import RetryConfig, RouteConfig
from collector.sla.terms import SlaContext
from tests.support.collector import RALLY_BAR, T0, AppClient, Clock, FakeAgent


@pytest.fixture
def client(engine: Engine, metrics: Metrics) -> AppClient:
    """A collector that has seen a device go down for good, a ticket for it, and one bad message."""
    ingest = Ingest(engine, metrics, "hezo/v1")
    clock = Clock(T0)
    agent = FakeAgent()
    ingest.handle(*agent.birth(), T0)
    ingest.handle(*agent.state("down", at=T0), T0)
    ingest.handle("hezo/v1/hq/room-101-pc/event", b"\xff garbage", T0)
    clock.advance(60)
    IncidentEngine(
        engine, confirm_window=60, critical_response_hours=1, metrics=metrics, now=clock
    ).evaluate()
    return AppClient(create_app(engine, metrics.registry))


def test_page_shows_device_ticket_and_rejected_count(client: AppClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    page = response.text
    assert 'http-equiv="refresh"' not in page  # live updates come by /live, without closing what is open
    for shown in ("HZ-000001", "critical", "2034FH1002R2", "HZ-2026-0042", "Room 101", "rally-bar-1", "down"):
        assert shown in page
    assert "1 rejected messages" in page
    assert '<td class="online">online</td>' in page


def test_page_shows_an_offline_agent_as_offline(engine: Engine, metrics: Metrics) -> None:
    agent = FakeAgent()
    ingest = Ingest(engine, metrics, "hezo/v1")
    ingest.handle(*agent.birth(), T0)
    ingest.handle(*agent.will(), T0)
    page = AppClient(create_app(engine, metrics.registry)).get("/").text
    assert '<td class="offline">offline</td>' in page
    assert '<td class="online">' not in page


def test_api_tickets_lists_ticket_with_entries_evidence_and_utc_times(client: AppClient) -> None:
    [ticket] = client.get("/api/tickets").json()
    assert ticket["number"] == "HZ-000001"
    assert ticket["serial"] == "2034FH1002R2"
    assert ticket["contract"] == "HZ-2026-0042"
    assert ticket["opened_at"] == "2026-11-24T21:01:00.000Z"
    assert ticket["response_due"] == "2026-11-24T22:01:00.000Z"
    assert ticket["evidence"][0]["detail"] == "connection refused"
    assert [entry["kind"] for entry in ticket["entries"]] == ["opened"]


def test_api_ticket_by_number(client: AppClient) -> None:
    assert client.get("/api/tickets/HZ-000001").json()["device"] == "rally-bar-1"


def test_unknown_ticket_is_404_with_a_reason(client: AppClient) -> None:
    response = client.get("/api/tickets/HZ-999999")
    assert response.status_code == 404
    assert response.json() == {"error": "not-found", "detail": "no ticket numbered 'HZ-999999'"}


def test_api_devices_and_agents(client: AppClient) -> None:
    [device] = client.get("/api/devices").json()
    assert (device["state"], device["down_since"]) == ("down", "2026-11-24T21:00:00.000Z")
    [agent] = client.get("/api/agents").json()
    assert (agent["site"], agent["agent"], agent["online"]) == ("hq", "room-101-pc", True)


def test_api_devices_hides_retired_devices_unless_asked(engine: Engine, metrics: Metrics) -> None:
    agent = FakeAgent(devices=[dict(RALLY_BAR), {**RALLY_BAR, "id": "old-cam"}])
    ingest = Ingest(engine, metrics, "hezo/v1")
    ingest.handle(*agent.birth(), T0)
    agent.devices = [dict(RALLY_BAR)]
    ingest.handle(*agent.birth(), T0)
    client = AppClient(create_app(engine, metrics.registry))

    assert [(d["device"], d["retired"]) for d in client.get("/api/devices").json()] == [
        ("rally-bar-1", False)
    ]
    listed = client.get("/api/devices?include_retired=true").json()
    assert [(d["device"], d["retired"], d["retired_at"]) for d in listed] == [
        ("old-cam", True, "2026-11-24T21:00:00.000Z"),
        ("rally-bar-1", False, None),
    ]
    assert "old-cam" not in client.get("/").text


@pytest.mark.parametrize("limit", ["0", "1001", "-5"])
def test_api_rejected_refuses_a_limit_out_of_range(client: AppClient, limit: str) -> None:
    response = client.get(f"/api/rejected?limit={limit}")
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["query", "limit"]


def test_api_rejected_honours_the_limit(client: AppClient) -> None:
    assert len(client.get("/api/rejected?limit=1").json()) == 1
    assert len(client.get("/api/rejected?limit=1000").json()) == 1


def test_api_rejected_shows_payload_as_text_and_the_error(client: AppClient) -> None:
    [item] = client.get("/api/rejected").json()
    assert item["topic"] == "hezo/v1/hq/room-101-pc/event"
    assert item["payload"] == "\ufffd garbage"
    assert item["error"].startswith("payload is not UTF-8")
    assert item["received_at"] == "2026-11-24T21:00:00.000Z"


def test_metrics_count_ingested_and_rejected(client: AppClient) -> None:
    text = client.get("/metrics").text
    assert 'hezo_messages_ingested_total{kind="birth"} 1.0' in text
    assert 'hezo_messages_rejected_total{reason="malformed"} 1.0' in text
    assert 'hezo_tickets_opened_total{priority="critical"} 1.0' in text


def test_healthz(client: AppClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_two_apps_have_separate_metrics(engine: Engine) -> None:
    first, second = Metrics(), Metrics()
    first.ingested.labels(kind="birth").inc()
    assert 'kind="birth"' in AppClient(create_app(engine, first.registry)).get("/metrics").text
    assert 'kind="birth"' not in AppClient(create_app(engine, second.registry)).get("/metrics").text


def test_text_from_agents_is_escaped_on_the_page(engine: Engine, metrics: Metrics) -> None:
    agent = FakeAgent(devices=[{"id": "cam-1", "model": "<script>alert(1)</script>"}])
    Ingest(engine, metrics, "hezo/v1").handle(*agent.birth(), T0)
    page = AppClient(create_app(engine, metrics.registry)).get("/").text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page


def test_healthz_is_503_with_the_reason_when_the_collector_is_not_working(engine: Engine) -> None:
    problem: list[str] = ["the writer thread is not running: nothing is stored or acknowledged"]
    client = AppClient(create_app(engine, health=lambda: problem[0] if problem else None))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unhealthy",
        "reason": "the writer thread is not running: nothing is stored or acknowledged",
    }
    problem.clear()
    assert client.get("/healthz").json() == {"status": "ok"}


def test_a_notification_given_up_is_on_the_page_and_in_the_api_and_can_be_sent_again(
    client: AppClient, engine: Engine
) -> None:
    from collector.notify import outbox
    from collector.sinks.base import Failed

    with engine.begin() as conn:
        outbox.route_new(conn, [RouteConfig(sinks=["desk"])], SlaContext.default().calendars, T0, {})
        [due] = outbox.claim_due(conn, "desk", T0, lease=60, owner="test")
        outbox.record(conn, due, Failed("HTTP 401: bad token"), T0, RetryConfig())
    page = client.get("/").text
    assert "1 given up" in page
    assert "HTTP 401: bad token" in page
    [dead] = client.get("/api/outbox?status=dead").json()
    assert (dead["sink"], dead["event"], dead["last_error"]) == ("desk", "opened", "HTTP 401: bad token")
    assert client.request("POST", "/api/outbox/retry", {"ids": [dead["id"]]}).json() == {"retried": 1}
    assert client.get("/api/outbox?status=dead").json() == []
    missing = client.request("POST", "/api/outbox/retry", {"ids": [dead["id"]]})
    assert (missing.status_code, missing.json()["error"]) == (404, "not-found")
