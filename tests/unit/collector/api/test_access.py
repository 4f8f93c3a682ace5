"""Who may call what: every route of the app, without credentials, with a viewer's token, and as another
customer's user. The routes are read from the app itself, so a new route without auth fails here."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import Engine, insert

from collector.api.app import create_app
from collector.config import CollectorConfig
from collector.registry import contracts, maintenance
from collector.remote.commander import Commander
from collector.store.database import make_engine
from collector.store.schema import agents, devices
from collector.tickets import open_by_hand
from tests.support.collector import T0, AppClient, Clock, migrated_engine

#: Routes anyone may call: probes, the login form, the API's own description. (/metrics, /metrics/fleet:
#: loopback only, tested below; the agents' uploads carry their command's one-time token, not a user's.)
OPEN = {
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/metrics/fleet"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
}
UPLOADS = "/api/uploads/"
SAFE = {"GET", "HEAD"}


def _flat(routes: list[Any]) -> Iterator[APIRoute]:
    """Every route, those of included routers too (FastAPI keeps them behind one entry per router)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from _flat(route.original_router.routes)


def _routes() -> list[tuple[str, str]]:
    engine = make_engine("sqlite://")
    app = create_app(engine, diagnostics=Commander(engine, CollectorConfig()))
    return sorted({(method, route.path) for route in _flat(app.routes) for method in route.methods})


ROUTES = _routes()
CHANGES = [(method, path) for method, path in ROUTES if method not in SAFE and (method, path) not in OPEN]


def url(path: str) -> str:
    """``path`` with its parameters naming the other customer's things (Globex's)."""
    values = {
        "number": "C-GLOBEX" if path.startswith("/api/contracts/") else "HZ-000002",
        "name": "a.txt" if path.startswith("/api/bundles/") else "globex-night",
        "bundle_id": "1",
        "command_id": "c1",
        "site": "globex-hq",
        "agent": "pc",
        "device": "bar",
    }
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: values[m.group(1)], path)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """Two customers, each with a device, a ticket (HZ-000001 Acme's, HZ-000002 Globex's) and a window."""
    engine = migrated_engine(tmp_path_factory.mktemp("access"))
    context = create_app(engine).state.wiring.sla
    with engine.begin() as conn:
        for customer, site, contract in (("Acme", "acme-hq", "C-ACME"), ("Globex", "globex-hq", "C-GLOBEX")):
            conn.execute(insert(agents).values(site=site, agent="pc", online=True))
            conn.execute(
                insert(devices).values(site=site, agent="pc", device="bar", state="up", contract=contract)
            )
            contracts.put(
                conn, contracts.values(number=contract, start=T0.date(), years=3, customer=customer)
            )
            open_by_hand(
                conn, site=site, agent="pc", device="bar", summary="?", by="t", now=T0, context=context
            )
            window = maintenance.values(
                name=f"{site.split('-')[0]}-night", site=site, days=["mon"], start="22:00", end="23:00"
            )
            maintenance.add(conn, window)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def clients(store: Engine) -> dict[str, AppClient]:
    app = create_app(store, now=Clock(), diagnostics=Commander(store, CollectorConfig()))
    return {
        "nobody": AppClient(app, role=None),
        "viewer": AppClient(app, role="viewer"),
        "engineer": AppClient(app, role="engineer"),
        "acme": AppClient(app, role="viewer", customer="Acme"),
    }


def test_the_app_has_routes_that_change_things() -> None:
    assert ("POST", "/api/tickets/{number}/respond") in CHANGES
    assert ("DELETE", "/api/contracts/{number}") in CHANGES


@pytest.mark.parametrize(("method", "path"), [r for r in ROUTES if r not in OPEN])
def test_every_route_but_the_open_ones_is_401_without_credentials(
    clients: dict[str, AppClient], method: str, path: str
) -> None:
    answer = clients["nobody"].request(method, url(path), json={} if method not in SAFE else None)
    if not path.startswith("/api/"):  # a page: the browser goes to the login form, and back after it
        assert (answer.status_code, answer.headers["Location"]) == (303, f"/login?next={url(path)}")
        return
    assert answer.status_code == 401, answer.text
    if method != "HEAD":  # (the uploads' own refusal is the upload protocol's)
        assert answer.json()["error"] == ("upload-refused" if path.startswith(UPLOADS) else "unauthorized")
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path"), [r for r in CHANGES if not r[1].startswith(UPLOADS)])
def test_every_change_is_403_for_a_viewer(clients: dict[str, AppClient], method: str, path: str) -> None:
    answer = clients["viewer"].request(method, url(path), json={})
    assert answer.status_code == 403, answer.text
    assert answer.json()["error"] == "forbidden"


#: The one change a customer's user makes: a ticket opened through the portal (test_pages_portal.py).
CUSTOMERS_OWN = {("POST", "/portal/tickets")}
#: Changes whose URL names something a customer may own: to another customer's user, it does not exist.
NAMED = [r for r in CHANGES if re.search(r"^/api/(tickets|contracts|maintenance)/\{(number|name)\}", r[1])]


@pytest.mark.parametrize(("method", "path"), NAMED)
def test_a_change_to_another_customers_thing_is_404(
    clients: dict[str, AppClient], method: str, path: str
) -> None:
    answer = clients["acme"].request(method, url(path), json={})
    assert answer.status_code == 404, answer.text


@pytest.mark.parametrize(
    ("method", "path"),
    [r for r in CHANGES if r not in NAMED and r not in CUSTOMERS_OWN and not r[1].startswith(UPLOADS)],
)
def test_every_other_change_is_403_for_a_customer(
    clients: dict[str, AppClient], method: str, path: str
) -> None:
    assert clients["acme"].request(method, url(path), json={}).status_code == 403


def test_a_customer_changing_its_own_ticket_is_403_and_another_customers_404(
    clients: dict[str, AppClient],
) -> None:
    acme = clients["acme"]
    assert acme.request("POST", "/api/tickets/HZ-000001/notes", json={"text": "x"}).status_code == 403
    assert acme.request("POST", "/api/tickets/HZ-000002/notes", json={"text": "x"}).status_code == 404
    assert acme.request("POST", "/api/tickets/HZ-999999/notes", json={"text": "x"}).status_code == 404


def test_a_customer_sees_only_its_own_devices_tickets_contracts_and_windows(
    clients: dict[str, AppClient],
) -> None:
    acme = clients["acme"]
    assert [t["number"] for t in acme.get("/api/tickets").json()] == ["HZ-000001"]
    assert acme.get("/api/tickets/HZ-000001").status_code == 200
    other = acme.get("/api/tickets/HZ-000002")
    assert (other.status_code, other.json()) == (
        404,
        {"error": "not-found", "detail": "no ticket numbered 'HZ-000002'"},
    )
    assert {d["site"] for d in acme.get("/api/devices").json()} == {"acme-hq"}
    assert acme.get("/api/devices/acme-hq/pc/bar/history").status_code == 200
    assert acme.get("/api/devices/globex-hq/pc/bar/history").json() == {
        "error": "not-found",
        "detail": "no device globex-hq/pc/bar",
    }
    assert {a["site"] for a in acme.get("/api/agents").json()} == {"acme-hq"}
    assert [c["number"] for c in acme.get("/api/contracts").json()] == ["C-ACME"]
    assert {c["site"] for c in acme.get("/api/coverage").json()} == {"acme-hq"}
    assert [w["name"] for w in acme.get("/api/maintenance").json()] == ["acme-night"]
    page = acme.get("/").text
    assert "HZ-000001" in page
    assert "HZ-000002" not in page
    assert "globex" not in page


@pytest.mark.parametrize(
    "path", ["/api/rejected", "/api/outbox", "/api/audit", "/api/commands", "/api/bundles", "/diagnostics"]
)
def test_the_providers_own_records_are_403_for_a_customer(clients: dict[str, AppClient], path: str) -> None:
    assert clients["acme"].get(path).status_code == 403


def test_staff_see_every_customer(clients: dict[str, AppClient]) -> None:
    assert len(clients["viewer"].get("/api/tickets").json()) >= 2


@pytest.mark.parametrize("path", ["/metrics", "/metrics/fleet"])
def test_metrics_are_open_on_loopback_but_need_a_token_through_a_proxy(
    clients: dict[str, AppClient], path: str
) -> None:
    assert clients["nobody"].get(path).status_code == 200
    proxied = {"X-Forwarded-For": "203.0.113.7"}
    assert clients["nobody"].get(path, headers=proxied).status_code == 401
    assert clients["viewer"].get(path, headers=proxied).status_code == 200
    assert clients["acme"].get(path, headers=proxied).status_code == 403


def test_a_bad_token_is_401_saying_invalid_token(clients: dict[str, AppClient]) -> None:
    answer = clients["nobody"].get("/api/me", headers={"Authorization": "Bearer hezo_0000_nope"})
    assert answer.status_code == 401
    assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]


def test_me_says_who_the_token_is(clients: dict[str, AppClient]) -> None:
    assert clients["acme"].get("/api/me").json() == {
        "name": "test-viewer-acme",
        "role": "viewer",
        "customer": "Acme",
        "via": "token",
    }


def test_a_host_not_allowed_is_400(clients: dict[str, AppClient]) -> None:
    answer = clients["viewer"].get("/api/me", headers={"Host": "evil.example"})
    assert answer.status_code == 400
    assert answer.json()["error"] == "bad-request"
    assert "web.allowed_hosts" in answer.json()["detail"]


def test_bundle_ids_past_the_largest_integer_are_422_not_500(clients: dict[str, AppClient]) -> None:
    for path in ("/api/bundles/9223372036854775808", "/api/bundles/99999999999999999999999/download"):
        answer = clients["engineer"].get(path)
        assert answer.status_code == 422, answer.text
