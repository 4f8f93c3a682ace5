"""The registers' pages: contracts with each device's coverage, maintenance windows, the audit log (admins)
and the outbox (staff), each filtered as asked and each showing a customer's user its own only."""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import Engine, insert

from collector import audit
from collector.api.app import create_app
from collector.registry import contracts, maintenance
from collector.store.schema import agents, devices
from tests.support.collector import T0, AppClient, Clock


@pytest.fixture
def app(engine: Engine) -> object:
    """Acme's contract runs; Globex's ended in 2024. One device each, one window each, two audit lines."""
    with engine.begin() as conn:
        for site, contract, customer, start in (
            ("acme-hq", "C-ACME", "Acme", T0.date()),
            ("globex-hq", "C-GLOBEX", "Globex", date(2021, 1, 1)),
        ):
            contracts.put(conn, contracts.values(number=contract, start=start, years=3, customer=customer))
            conn.execute(insert(agents).values(site=site, agent="pc", online=True))
            conn.execute(
                insert(devices).values(site=site, agent="pc", device="bar", state="up", contract=contract)
            )
            maintenance.add(
                conn,
                maintenance.values(
                    name=f"{site}-night",
                    site=site,
                    days=["mon"],
                    start="22:00",
                    end="23:00",
                    reason="backups",
                ),
            )
        audit.record(conn, T0, "ticket-open", "low: a question", actor="ann", subject="HZ-000001")
        audit.record(conn, T0, "user-add", "bob: viewer", actor="local:root", subject="bob")
    return create_app(engine, now=Clock(T0))


def test_contracts_show_each_contract_and_the_devices_with_a_problem(app: object) -> None:
    page = AppClient(app, role="viewer").get("/contracts").text
    assert "C-ACME" in page
    assert "C-GLOBEX" in page
    assert "globex-hq/pc/bar" in page  # expired: no automatic ticket
    assert "acme-hq/pc/bar" not in page  # covered: not a problem
    every = AppClient(app, role="viewer").get("/contracts?devices=all").text
    assert "acme-hq/pc/bar" in every


def test_a_customer_sees_its_own_contract_and_windows_only(app: object) -> None:
    acme = AppClient(app, role="viewer", customer="Acme")
    for path in ("/contracts?devices=all", "/maintenance"):
        page = acme.get(path).text
        assert "globex" not in page.lower(), path
    assert "acme-hq-night" in acme.get("/maintenance").text


def test_maintenance_windows_are_filtered_by_site(app: object) -> None:
    page = AppClient(app, role="viewer").get("/maintenance?site=acme-hq").text
    assert "acme-hq-night" in page
    assert "globex-hq-night" not in page
    assert "mon 22:00\u201323:00" in page  # an en dash between the times


def test_the_audit_log_is_for_admins_and_filters_by_actor(app: object) -> None:
    assert AppClient(app, role="engineer").get("/audit").status_code == 403
    admin = AppClient(app)
    page = admin.get("/audit?actor=ann").text
    assert '<a href="/tickets/HZ-000001">HZ-000001</a>' in page
    assert "bob: viewer" not in page
    assert "bob: viewer" in admin.get("/audit").text


def test_the_outbox_is_for_staff_and_refuses_an_unknown_status(app: object) -> None:
    assert AppClient(app, role="viewer", customer="Acme").get("/outbox").status_code == 403
    viewer = AppClient(app, role="viewer")
    assert "No deliveries match." in viewer.get("/outbox").text
    answer = viewer.get("/outbox?status=lost")
    assert answer.status_code == 422
    assert re.search(r"status", answer.text)
