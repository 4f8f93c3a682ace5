"""A device's hourly history over the API: the hours the retention's roll-up made, read back in time order
within bounds; the metrics it has; bad windows and names refused with their reason; a customer's user kept to
its own devices (another's answers 404, as an unknown one does)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert

from collector.api.app import create_app
from collector.ingest.pipeline import Ingest
from collector.metrics import Metrics
from collector.registry import contracts
from collector.store.retention import RetentionConfig, run
from collector.store.schema import samples
from tests.support.collector import RALLY_BAR, T0, AppClient, Clock, FakeAgent

HOUR = timedelta(hours=1)
NOW = T0 + 6 * HOUR
URL = "/api/devices/hq/room-101-pc/rally-bar-1/history"


def _telemetry(agent: FakeAgent, at: Any, count: int, metric: str = "https.duration_ms") -> tuple[str, bytes]:
    topic, payload = agent.telemetry(at=at, count=count)  # values 10, 11, ... of https.duration_ms
    return topic, payload.replace(b'"https.duration_ms"', f'"{metric}"'.encode())


@pytest.fixture
def app(engine: Engine) -> Any:
    """hq's Rally Bar under Acme's contract, with samples in three hours of T0's evening, rolled up by a
    retention run; Globex has a contract and no device."""
    ingest = Ingest(engine, Metrics(), "hezo/v1")
    agent = FakeAgent()
    ingest.handle(*agent.birth(at=T0), T0)
    ingest.handle(*agent.state("up", at=T0), T0)
    for at, count in ((T0, 3), (T0 + 59 * timedelta(minutes=1), 1), (T0 + HOUR, 1), (T0 + 3 * HOUR, 2)):
        ingest.handle(*_telemetry(agent, at, count), at)
    ingest.handle(*_telemetry(agent, T0 + 2 * HOUR, 1, "icmp.rtt_ms"), T0 + 2 * HOUR)
    with engine.begin() as conn:
        for number, customer in ((RALLY_BAR["contract"], "Acme"), ("C-GLOBEX", "Globex")):
            contracts.put(conn, contracts.values(number=number, start=T0.date(), years=3, customer=customer))
    run(engine, RetentionConfig(), NOW)
    return create_app(engine, now=Clock(NOW))


def test_the_hours_of_a_metric_come_in_time_order_with_their_figures(app: Any) -> None:
    answer = AppClient(app, role="viewer").get(f"{URL}?metric=https.duration_ms")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["hours"] == [
        {"hour": "2026-11-24T21:00:00.000Z", "samples": 4, "minimum": 10.0, "maximum": 12.0, "mean": 10.75},
        {"hour": "2026-11-24T22:00:00.000Z", "samples": 1, "minimum": 10.0, "maximum": 10.0, "mean": 10.0},
        {"hour": "2026-11-25T00:00:00.000Z", "samples": 2, "minimum": 10.0, "maximum": 11.0, "mean": 10.5},
    ]
    assert (body["metric"], body["metrics"], body["next"]) == ("https.duration_ms", [], None)
    assert (body["since"], body["until"]) == ("2026-11-18T03:00:00.000Z", "2026-11-25T03:00:00.000Z")


def test_without_a_metric_it_lists_the_metrics_the_device_has_hours_of(app: Any) -> None:
    body = AppClient(app).get(URL).json()
    assert body["hours"] == []
    assert body["metrics"] == [
        {
            "metric": "https.duration_ms",
            "hours": 3,
            "first": "2026-11-24T21:00:00.000Z",
            "last": "2026-11-25T00:00:00.000Z",
        },
        {
            "metric": "icmp.rtt_ms",
            "hours": 1,
            "first": "2026-11-24T23:00:00.000Z",
            "last": "2026-11-24T23:00:00.000Z",
        },
    ]


def test_the_window_starts_on_since_s_hour_and_ends_before_until(app: Any) -> None:
    body = (
        AppClient(app)
        .get(f"{URL}?metric=https.duration_ms&since=2026-11-24T21:30:00Z&until=2026-11-25T01:00:00%2B01:00")
        .json()
    )
    assert [hour["hour"] for hour in body["hours"]] == [
        "2026-11-24T21:00:00.000Z",
        "2026-11-24T22:00:00.000Z",
    ]
    assert (body["since"], body["until"]) == ("2026-11-24T21:00:00.000Z", "2026-11-25T00:00:00.000Z")


def test_a_limit_cuts_the_hours_and_next_says_where_to_go_on(app: Any) -> None:
    client = AppClient(app)
    first = client.get(f"{URL}?metric=https.duration_ms&limit=2").json()
    assert [hour["hour"] for hour in first["hours"]] == [
        "2026-11-24T21:00:00.000Z",
        "2026-11-24T22:00:00.000Z",
    ]
    assert first["next"] == "2026-11-25T00:00:00.000Z"
    rest = client.get(f"{URL}?metric=https.duration_ms&limit=2&since={first['next']}").json()
    assert ([hour["hour"] for hour in rest["hours"]], rest["next"]) == (["2026-11-25T00:00:00.000Z"], None)


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("since=2026-11-24T21:00:00Z&until=2026-11-24T20:00:00Z", "must be before until"),
        ("since=2026-11-24T21:00:00Z&until=2026-11-24T21:00:00Z", "must be before until"),
        ("since=2026-08-01T00:00:00Z&until=2026-11-24T00:00:00Z", "longer than 90 days"),
        ("since=2026-01-01T00:00:00Z", "longer than 90 days"),  # until: now
    ],
)
def test_a_window_upside_down_or_too_long_is_422_saying_why(app: Any, query: str, reason: str) -> None:
    answer = AppClient(app).get(f"{URL}?metric=https.duration_ms&{query}")
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "invalid"
    assert reason in answer.json()["detail"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("since=yesterday", "since"),
        ("until=2026-11-24T21:00:00", "until"),  # no time zone
        ("since=1900-01-01T00:00:00Z", "since"),
        ("metric=a%00b", "metric"),
        (f"metric={'m' * 129}", "metric"),
        ("metric=https.duration_ms&limit=0", "limit"),
        ("metric=https.duration_ms&limit=2161", "limit"),
    ],
)
def test_a_bad_time_metric_or_limit_is_422_naming_it(app: Any, query: str, field: str) -> None:
    answer = AppClient(app).get(f"{URL}?{query}")
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error"] == "invalid"
    assert [error["loc"] for error in body["detail"]] == [["query", field]]


def test_a_mean_past_a_float_s_range_is_null_not_a_broken_answer(engine: Engine) -> None:
    ingest = Ingest(engine, Metrics(), "hezo/v1")
    agent = FakeAgent()
    ingest.handle(*agent.state("up", at=T0), T0)
    # Samples stored before ingest bounded the values: the hour's total is past the largest float.
    huge = {"site": "hq", "agent": "room-101-pc", "boot": agent.boot, "device": "rally-bar-1"}
    with engine.begin() as conn:
        conn.execute(
            insert(samples),
            [
                {**huge, "seq": 100, "idx": idx, "metric": "https.duration_ms", "value": 1.7e308, "ts": T0}
                for idx in range(2)
            ],
        )
    run(engine, RetentionConfig(), NOW)
    answer = AppClient(create_app(engine, now=Clock(NOW))).get(f"{URL}?metric=https.duration_ms")
    assert answer.status_code == 200, answer.text
    assert answer.json()["hours"] == [
        {
            "hour": "2026-11-24T21:00:00.000Z",
            "samples": 2,
            "minimum": 1.7e308,
            "maximum": 1.7e308,
            "mean": None,
        }
    ]


def test_an_unknown_device_is_404(app: Any) -> None:
    answer = AppClient(app).get("/api/devices/hq/room-101-pc/nothing-here/history")
    assert (answer.status_code, answer.json()) == (
        404,
        {"error": "not-found", "detail": "no device hq/room-101-pc/nothing-here"},
    )


def test_a_customer_reads_its_own_devices_history_and_another_customers_user_gets_404(app: Any) -> None:
    own = AppClient(app, role="viewer", customer="Acme").get(f"{URL}?metric=https.duration_ms")
    assert (own.status_code, len(own.json()["hours"])) == (200, 3)
    other = AppClient(app, role="viewer", customer="Globex").get(f"{URL}?metric=https.duration_ms")
    assert (other.status_code, other.json()) == (
        404,
        {"error": "not-found", "detail": "no device hq/room-101-pc/rally-bar-1"},
    )


def test_the_openapi_document_describes_the_answer(app: Any) -> None:
    operation = app.openapi()["paths"]["/api/devices/{site}/{agent}/{device}/history"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/DeviceHistory"}
    assert {"404", "422"} <= set(operation["responses"])
