"""The customers' portal: a customer's user opens a ticket on its own device, reading each priority in the
terms' words; never on another customer's device; the staff are sent to the API."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, insert

from collector.api.app import create_app
from collector.registry import contracts
from collector.store.schema import agents, devices
from tests.support.collector import T0, AppClient, Clock


@pytest.fixture
def app(engine: Engine) -> object:
    with engine.begin() as conn:
        for site, contract, customer in (("acme-hq", "C-ACME", "Acme"), ("globex-hq", "C-GLOBEX", "Globex")):
            contracts.put(
                conn, contracts.values(number=contract, start=T0.date(), years=3, customer=customer)
            )
            conn.execute(insert(agents).values(site=site, agent="pc", online=True))
            conn.execute(
                insert(devices).values(
                    site=site,
                    agent="pc",
                    device="bar",
                    state="up",
                    contract=contract,
                    serial=f"SN-{site}",
                    model="rally-bar",
                    name="Rally Bar",
                    room="Room 1",
                )
            )
    return create_app(engine, now=Clock(T0))


def test_the_portal_offers_the_customers_devices_with_serial_and_contract(app: object) -> None:
    page = AppClient(app, role="viewer", customer="Acme").get("/portal").text
    assert 'value="acme-hq/pc/bar" data-serial="SN-acme-hq" data-contract="C-ACME"' in page
    assert "globex" not in page


def test_each_priority_is_read_in_the_terms_words_with_its_deadlines(app: object) -> None:
    page = AppClient(app, role="viewer", customer="Acme").get("/portal").text
    assert "<b>Critical</b>: no access to the device, the device does not work." in page
    assert "Service window 24x7; first response within 1 h" in page
    assert "not a fault: configuration change, how something works, consultation" in page
    assert "a replacement delivered within 8 h of confirmation" in page


def test_a_customer_opens_a_ticket_on_its_device_and_sees_it(app: object) -> None:
    acme = AppClient(app, role="viewer", customer="Acme")
    answer = acme.request(
        "POST", "/portal/tickets", {"device": "acme-hq/pc/bar", "priority": "high", "summary": "Audio drops"}
    )
    assert answer.status_code == 201, answer.text
    number = answer.json()["number"]
    assert answer.json()["page"] == f"/tickets/{number}"
    ticket = AppClient(app).get(f"/api/tickets/{number}").json()
    assert (ticket["priority"], ticket["serial"], ticket["contract"]) == ("high", "SN-acme-hq", "C-ACME")
    assert ticket["opened_by"] == "test-viewer-acme"
    assert number in acme.get("/board").text


def test_another_customers_device_is_not_found(app: object) -> None:
    acme = AppClient(app, role="viewer", customer="Acme")
    answer = acme.request(
        "POST", "/portal/tickets", {"device": "globex-hq/pc/bar", "priority": "low", "summary": "?"}
    )
    assert answer.status_code == 404
    assert AppClient(app).get("/api/tickets").json() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"device": "acme-hq/pc/bar", "priority": "urgent", "summary": "?"}, "priority"),
        ({"device": "acme-hq/pc", "priority": "low", "summary": "?"}, "device"),
        ({"device": "acme-hq/pc/bar", "priority": "low", "summary": ""}, "summary"),
    ],
)
def test_a_bad_field_is_refused_naming_it(app: object, body: dict[str, str], field: str) -> None:
    answer = AppClient(app, role="viewer", customer="Acme").request("POST", "/portal/tickets", body)
    assert answer.status_code == 422
    assert field in answer.text


def test_the_staff_are_sent_to_the_api(app: object) -> None:
    engineer = AppClient(app, role="engineer")
    assert engineer.get("/portal").status_code == 403
    answer = engineer.request(
        "POST", "/portal/tickets", {"device": "acme-hq/pc/bar", "priority": "low", "summary": "?"}
    )
    assert answer.status_code == 403
    assert "staff open tickets with the API" in answer.json()["detail"]
