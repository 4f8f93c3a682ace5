"""The fleet as a user reads it: customers and sites with health counts, the worst first; a site's rooms; a
device's page with its facts, checks, history and buttons for engineers; a customer's user kept to its own."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import Engine, insert

from collector.api.app import create_app
from collector.config import CollectorConfig
from collector.registry import contracts
from collector.remote.commander import Commander
from collector.store.schema import agents, device_transitions, devices
from tests.support.collector import T0, AppClient, Clock

CHECKS = [
    {
        "driver": "https",
        "target": "https://192.0.2.10/",
        "ok": True,
        "detail": "200 OK",
        "ts": "2026-11-24T21:00:00.000Z",
        "duration_ms": 12.5,
        "facts": {"firmware": "1.12.4"},
    }
]


@pytest.fixture
def app(engine: Engine) -> object:
    """Acme: hq (all up) and branch (a bar down, a tap degraded); Globex: plant (one down)."""
    fleet = [
        ("acme-hq", "pc-1", "bar", "up", "C-ACME", "Room 1"),
        ("acme-hq", "pc-1", "tap", "up", "C-ACME", "Room 1"),
        ("acme-branch", "pc-2", "bar", "down", "C-ACME", "Board room"),
        ("acme-branch", "pc-3", "tap", "degraded", "C-ACME", "Huddle"),
        ("acme-branch", "pc-3", "cam", "up", "C-ACME", "Huddle"),
        ("globex-plant", "pc-9", "bar", "down", "C-GLOBEX", "Hall"),
    ]
    with engine.begin() as conn:
        for number, customer in (("C-ACME", "Acme"), ("C-GLOBEX", "Globex")):
            contracts.put(conn, contracts.values(number=number, start=T0.date(), years=3, customer=customer))
        for site, agent in sorted({(row[0], row[1]) for row in fleet}):
            conn.execute(insert(agents).values(site=site, agent=agent, online=True))
        for site, agent, device, state, contract, room in fleet:
            conn.execute(
                insert(devices).values(
                    site=site,
                    agent=agent,
                    device=device,
                    state=state,
                    contract=contract,
                    room=room,
                    model="rally-bar",
                    serial=f"SN-{site}-{device}",
                    state_since=T0,
                    checks=CHECKS,
                )
            )
        conn.execute(
            insert(device_transitions),
            [
                {
                    "site": "acme-branch",
                    "agent": "pc-2",
                    "device": "bar",
                    "at": T0,
                    "from_state": "up",
                    "to_state": "down",
                },
                {
                    "site": "acme-branch",
                    "agent": "pc-2",
                    "device": "bar",
                    "at": T0 - timedelta(hours=1),
                    "from_state": "unknown",
                    "to_state": "up",
                },
            ],
        )
    return create_app(engine, now=Clock(T0), diagnostics=Commander(engine, CollectorConfig()))


def test_the_fleet_lists_customers_and_sites_the_worst_first(app: object) -> None:
    page = AppClient(app, role="viewer").get("/fleet").text
    assert re.findall(r'<tr data-site="([\w-]+)"', page) == ["acme-branch", "acme-hq", "globex-plant"]
    assert page.index("<h2>Acme") < page.index("<h2>Globex")  # Acme has a down device and a degraded one
    assert '<span class="state-down">1 down</span>, <span class="state-degraded">1 degraded</span>' in page


def test_a_site_shows_its_rooms_and_devices_the_worst_first(app: object) -> None:
    page = AppClient(app, role="viewer").get("/fleet/acme-branch").text
    assert re.findall(r'<tr data-device="([\w/-]+)"', page) == ["pc-2/bar", "pc-3/tap", "pc-3/cam"]
    assert "Board room" in page


def test_the_device_page_has_its_facts_checks_and_history(app: object) -> None:
    page = AppClient(app, role="viewer").get("/devices/acme-branch/pc-2/bar").text
    for shown in ("SN-acme-branch-bar", "1.12.4", "C-ACME (active", "200 OK", "Last checks"):
        assert shown in page, shown
    assert re.findall(r'state-(\w+)">(\w+)</span></li>', page) == [("down", "down"), ("up", "up")]
    assert "data-command" not in page  # a viewer runs no diagnostics


def test_an_engineer_gets_the_service_test_and_log_pull_buttons(app: object) -> None:
    page = AppClient(app, role="engineer").get("/devices/acme-branch/pc-2/bar").text
    assert re.findall(r'data-command="([\w-]+)"', page) == ["service-tests", "collect-logs"]


def test_a_customers_user_sees_only_its_own_fleet(app: object) -> None:
    acme = AppClient(app, role="viewer", customer="Acme")
    page = acme.get("/fleet").text
    assert "globex" not in page.lower()
    assert acme.get("/fleet/globex-plant").status_code == 404
    assert acme.get("/devices/globex-plant/pc-9/bar").status_code == 404
    assert acme.get("/devices/acme-hq/pc-1/bar").status_code == 200


def test_an_id_that_cannot_be_one_is_refused(app: object) -> None:
    assert AppClient(app).get("/fleet/Not%20A%20Site").status_code == 422
