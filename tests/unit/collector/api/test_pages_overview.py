"""The overview counts the devices by state as the store holds them (retired ones left out; a customer's
user its own only) and lists the worst first, a bounded number of them."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import Engine, insert

from collector.api.app import create_app
from collector.api.pages import overview
from collector.registry import contracts
from collector.store.schema import agents, devices
from tests.support.collector import T0, AppClient, Clock

#: (site, device, state, contract, retired): Acme has six devices (and a retired one), Globex two.
FLEET = [
    ("acme-hq", "bar-1", "up", "C-ACME", False),
    ("acme-hq", "bar-2", "down", "C-ACME", False),
    ("acme-hq", "tap-1", "degraded", "C-ACME", False),
    ("acme-hq", "cam-1", "unknown", "C-ACME", False),
    ("acme-hq", "cam-2", "up", "C-ACME", False),
    ("acme-hq", "old-1", "down", "C-ACME", True),
    ("acme-hq", "tap-2", "down", "C-ACME", False),
    ("globex-hq", "bar-1", "down", "C-GLOBEX", False),
    ("globex-hq", "tap-1", "up", "C-GLOBEX", False),
]


@pytest.fixture
def app(engine: Engine) -> Any:
    with engine.begin() as conn:
        for number, customer in (("C-ACME", "Acme"), ("C-GLOBEX", "Globex")):
            contracts.put(conn, contracts.values(number=number, start=T0.date(), years=3, customer=customer))
        for site in ("acme-hq", "globex-hq"):
            conn.execute(insert(agents).values(site=site, agent="pc", online=True))
        for site, device, state, contract, retired in FLEET:
            conn.execute(
                insert(devices).values(
                    site=site,
                    agent="pc",
                    device=device,
                    state=state,
                    contract=contract,
                    retired_at=T0 if retired else None,
                )
            )
    return create_app(engine, now=Clock(T0))


def text(page: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", page))


def listed(page: str) -> list[tuple[str, str]]:
    """The (site, device) of each row of the devices table, in order."""
    table = page.split("<h2>Devices, the worst first</h2>", 1)[1].split("</table>", 1)[0]
    return re.findall(r"<td>([a-z0-9-]+)</td><td>pc</td><td>([a-z0-9-]+)</td>", table)


def test_staff_see_every_device_counted_by_state_the_worst_first(app: Any) -> None:
    page = text(AppClient(app, role="viewer").get("/").text)
    assert "8 devices" in page
    assert "Devices: 3 down, 1 degraded, 1 unknown, 3 up." in page


def test_a_customer_sees_its_own_devices_counted(app: Any) -> None:
    page = text(AppClient(app, role="viewer", customer="Acme").get("/").text)
    assert "6 devices" in page
    assert "Devices: 2 down, 1 degraded, 1 unknown, 2 up." in page


def test_the_devices_are_listed_the_worst_first_and_no_more_than_the_page_holds(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = AppClient(app, role="viewer", customer="Acme")
    assert listed(client.get("/").text) == [
        ("acme-hq", "bar-2"),
        ("acme-hq", "tap-2"),
        ("acme-hq", "tap-1"),
        ("acme-hq", "cam-1"),
        ("acme-hq", "bar-1"),
        ("acme-hq", "cam-2"),
    ]
    monkeypatch.setattr(overview, "DEVICES", 3)
    page = client.get("/").text
    assert listed(page) == [("acme-hq", "bar-2"), ("acme-hq", "tap-2"), ("acme-hq", "tap-1")]
    assert "The first 3 of 6;" in text(page)
    assert "Devices: 2 down, 1 degraded, 1 unknown, 2 up." in text(page)
