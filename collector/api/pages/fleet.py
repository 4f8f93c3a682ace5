"""``/fleet`` (customers and their sites with health counts, the worst first), ``/fleet/{site}`` (the site's
rooms and agents with their devices, the worst first) and ``/devices/{site}/{agent}/{device}`` (one device:
its facts, contract, maintenance, last checks, state history, tickets and, for engineers, the buttons for
service tests and log pulls). A customer's user sees the devices under its own contracts only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Connection, func, select

from collector.api.auth import Id, PageReader, scope
from collector.api.deps import Wired
from collector.api.pages.board import at_site, visitor
from collector.api.pages.charts import device_charts
from collector.api.pages.words import cause_words
from collector.errors import NotFoundError
from collector.people import Scope
from collector.registry import contracts as registry
from collector.registry import maintenance
from collector.store.queries import STATES
from collector.store.schema import contracts, device_transitions, devices, tickets

router = APIRouter(include_in_schema=False)

#: Devices shown on one site's page, and state changes on one device's.
SITE_DEVICES = 2000
HISTORY = 50
NO_CONTRACT = "(no contract)"


@dataclass
class Health:
    """Devices by state, and how they sort: the worst first."""

    name: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATES, 0))
    children: list[Health] = field(default_factory=list)

    def add(self, state: str, count: int) -> None:
        self.counts[state if state in self.counts else "unknown"] += count

    def worst_first(self) -> tuple[int, ...]:
        return tuple(-self.counts[state] for state in STATES[:3])

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def fleet_health(conn: Connection, customer: str | None) -> list[Health]:
    """Each customer's sites with their devices counted by state (retired devices left out), worst first;
    a device is its contract's customer's (``customer``: that one's only)."""
    owner = func.coalesce(contracts.c.customer, NO_CONTRACT)
    query = (
        select(owner, devices.c.site, devices.c.state, func.count())
        .select_from(devices.outerjoin(contracts, contracts.c.number == devices.c.contract))
        .where(devices.c.retired_at.is_(None))
        .group_by(owner, devices.c.site, devices.c.state)
    )
    if customer is not None:
        query = query.where(contracts.c.customer == customer)
    customers: dict[str, dict[str, Health]] = {}
    for name, site, state, count in conn.execute(query):
        sites = customers.setdefault(name, {})
        sites.setdefault(site, Health(site)).add(state, int(count))
    found = []
    for name, sites in customers.items():
        whole = Health(name, children=sorted(sites.values(), key=lambda h: (h.worst_first(), h.name)))
        for site in whole.children:
            for state, count in site.counts.items():
                whole.add(state, count)
        found.append(whole)
    return sorted(found, key=lambda h: (h.worst_first(), h.name))


@router.get("/fleet", response_class=HTMLResponse)
def fleet(request: Request, wired: Wired, who: PageReader) -> Response:
    with wired.engine.connect() as conn:
        found = fleet_health(conn, who.customer)
    context = {"customers": found, "states": STATES, **visitor(request, who)}
    return wired.templates.TemplateResponse(
        request, "fleet.html", context, headers={"Cache-Control": "no-store"}
    )


def _rank(device: Mapping[str, Any]) -> tuple[int, str, str]:
    state = device["state"] if device["state"] in STATES else "unknown"
    return (STATES.index(state), device["agent"], device["device"])


@router.get("/fleet/{site}", response_class=HTMLResponse)
def site_page(request: Request, site: Id, wired: Wired, who: PageReader) -> Response:
    """One site's rooms (by agent) and their devices, the worst first."""
    with wired.engine.connect() as conn:
        seen = scope(conn, who)
        query = (
            select(devices)
            .where(devices.c.site == site, devices.c.retired_at.is_(None))
            .order_by(devices.c.agent, devices.c.device)
            .limit(SITE_DEVICES)
        )
        rows = [dict(row._mapping) for row in conn.execute(query)]
    if seen is not None:
        rows = [row for row in rows if seen.has_device(row["site"], row["agent"], row["device"])]
    if not rows:
        raise NotFoundError(f"no devices at site {site!r}")
    rooms: dict[tuple[str, str], Health] = {}
    listed: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        key = (row["agent"], row["room"] or "")
        rooms.setdefault(key, Health(row["agent"])).add(row["state"], 1)
        listed.setdefault(key, []).append(row)
    order = sorted(rooms, key=lambda key: (rooms[key].worst_first(), key))
    context = {
        "site": site,
        "rooms": [(key, rooms[key], sorted(listed[key], key=_rank)) for key in order],
        "limited": len(rows) >= SITE_DEVICES,
        "limit": SITE_DEVICES,
        "at": at_site(wired),
        "states": STATES,
        **visitor(request, who),
    }
    return wired.templates.TemplateResponse(
        request, "site.html", context, headers={"Cache-Control": "no-store"}
    )


def _device(conn: Connection, seen: Scope | None, site: str, agent: str, device: str) -> dict[str, Any]:
    row = conn.execute(
        select(devices).where(devices.c.site == site, devices.c.agent == agent, devices.c.device == device)
    ).first()
    if row is None or (seen is not None and not seen.has_device(site, agent, device)):
        raise NotFoundError(f"no device {site}/{agent}/{device}")
    return dict(row._mapping)


def _firmware(checks: Any) -> str | None:
    for check in checks if isinstance(checks, list) else []:
        facts = check.get("facts") if isinstance(check, dict) else None
        if isinstance(facts, dict) and facts.get("firmware"):
            return str(facts["firmware"])
    return None


@router.get("/devices/{site}/{agent}/{device}", response_class=HTMLResponse)
def device_page(  # noqa: PLR0917 (the three ids of a device are its path)
    request: Request, site: Id, agent: Id, device: Id, wired: Wired, who: PageReader
) -> Response:
    with wired.engine.connect() as conn:
        seen = scope(conn, who)
        found = _device(conn, seen, site, agent, device)
        history = [
            dict(row._mapping)
            for row in conn.execute(
                select(device_transitions)
                .where(
                    device_transitions.c.site == site,
                    device_transitions.c.agent == agent,
                    device_transitions.c.device == device,
                )
                .order_by(device_transitions.c.at.desc(), device_transitions.c.id.desc())
                .limit(HISTORY)
            )
        ]
        its_tickets = [
            dict(row._mapping)
            for row in conn.execute(
                select(tickets)
                .where(tickets.c.site == site, tickets.c.agent == agent, tickets.c.device == device)
                .order_by(tickets.c.id.desc())
                .limit(HISTORY)
            )
        ]
        coverage = registry.Registry.load(conn).coverage(
            found["contract"], found["serial"], wired.today_of(site), wired.rules.contract_warning_days
        )
        charts = device_charts(conn, site, agent, device, wired.now())
        windows = [
            window
            for window in maintenance.list_windows(conn)
            if window["site"] == site
            and window["agent"] in ("", None, agent)
            and window["device"] in ("", None, device)
        ]
    for ticket in its_tickets:
        ticket["name"] = found["name"]
        ticket["words"] = cause_words(ticket)
    context = {
        "d": found,
        "firmware": _firmware(found["checks"]),
        "history": history,
        "tickets": its_tickets,
        "coverage": coverage,
        "windows": windows,
        "charts": charts,
        "remote": wired.commander is not None,
        "at": at_site(wired),
        **visitor(request, who),
    }
    return wired.templates.TemplateResponse(
        request, "device.html", context, headers={"Cache-Control": "no-store"}
    )
