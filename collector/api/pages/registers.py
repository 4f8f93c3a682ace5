"""The registers as tables with filters: ``/contracts`` (contracts and each device's coverage),
``/maintenance`` (windows), ``/audit`` (who did what; admins) and ``/outbox`` (notifications and their
deliveries; staff). Each shows what its JSON API shows the same person: a customer's user its own contracts,
devices and windows only."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from collector import audit
from collector.api.auth import PageReader, PageStaff, scope
from collector.api.deps import Wired
from collector.api.pages.board import at_site, visitor
from collector.errors import ForbiddenError
from collector.notify import outbox
from collector.people import Role
from collector.registry import contracts, maintenance

router = APIRouter(include_in_schema=False)

#: Rows one table shows at most; the filters and the JSON API reach the rest.
MAX_ROWS = 1000

Short = Annotated[str | None, Query(max_length=128)]


def _page(request: Request, wired: Wired, name: str, context: dict[str, Any]) -> Response:
    return wired.templates.TemplateResponse(request, name, context, headers={"Cache-Control": "no-store"})


@router.get("/contracts", response_class=HTMLResponse)
def contracts_page(
    request: Request,
    wired: Wired,
    who: PageReader,
    *,
    customer: Short = None,
    site: Short = None,
    devices: Literal["problems", "all"] = "problems",
) -> Response:
    """The contracts (by customer) and the devices' coverage (only those with a problem, by default)."""
    with wired.engine.connect() as conn:
        seen = scope(conn, who)
        found = contracts.list_contracts(conn, wired.now().date(), wired.rules.contract_warning_days)
        coverage = contracts.device_coverage(conn, wired.today_of, wired.rules.contract_warning_days)
    if seen is not None:
        found = [row for row in found if row["customer"] == who.customer]
        coverage = [row for row in coverage if seen.has_device(row["site"], row["agent"], row["device"])]
    customers = sorted({row["customer"] for row in found if row["customer"]})
    if customer:
        found = [row for row in found if row["customer"] == customer]
        numbers = {row["number"] for row in found}
        coverage = [row for row in coverage if row["contract"] in numbers]
    if site:
        coverage = [row for row in coverage if row["site"] == site]
    if devices == "problems":
        coverage = [row for row in coverage if row["warning"] is not None]
    context = {
        "contracts": found,
        "coverage": coverage[:MAX_ROWS],
        "more": max(0, len(coverage) - MAX_ROWS),
        "customers": customers,
        "chosen": {"customer": customer or "", "site": site or "", "devices": devices},
        **visitor(request, who),
    }
    return _page(request, wired, "contracts.html", context)


@router.get("/maintenance", response_class=HTMLResponse)
def maintenance_page(request: Request, wired: Wired, who: PageReader, site: Short = None) -> Response:
    with wired.engine.connect() as conn:
        seen = scope(conn, who)
        windows = maintenance.list_windows(conn)
    if seen is not None:
        windows = [row for row in windows if seen.has_window(row)]
    sites = sorted({row["site"] for row in windows})
    if site:
        windows = [row for row in windows if row["site"] == site]
    context = {"windows": windows, "sites": sites, "site": site or "", "at": at_site(wired)}
    return _page(request, wired, "maintenance.html", {**context, **visitor(request, who)})


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    wired: Wired,
    who: PageStaff,
    *,
    subject: Short = None,
    actor: Short = None,
    event: Short = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ROWS)] = 200,
) -> Response:
    """The newest audit lines (admins, as ``/api/audit``), about one subject or by one actor if asked."""
    if not who.may(Role.ADMIN):
        raise ForbiddenError(f"the audit log needs the admin role; {who.name} is {who.role}")
    with wired.engine.connect() as conn:
        lines = audit.list_audit(conn, MAX_ROWS if actor or event else limit, None, subject or None)
    if actor:
        lines = [line for line in lines if line["actor"] == actor]
    if event:
        lines = [line for line in lines if line["event"] == event]
    context = {
        "lines": lines[:limit],
        "chosen": {"subject": subject or "", "actor": actor or "", "event": event or "", "limit": limit},
        "at": at_site(wired),
    }
    return _page(request, wired, "audit.html", {**context, **visitor(request, who)})


@router.get("/outbox", response_class=HTMLResponse)
def outbox_page(
    request: Request,
    wired: Wired,
    who: PageStaff,
    status: Literal["pending", "sent", "dead", ""] = "",
    sink: Short = None,
) -> Response:
    """The latest deliveries of notifications, by status and sink, and the totals per sink."""
    with wired.engine.connect() as conn:
        rows = outbox.list_deliveries(conn, status=status or None, limit=MAX_ROWS)
        totals = outbox.counts(conn)
    if sink:
        rows = [row for row in rows if row["sink"] == sink]
    sinks = sorted({name for name, _ in totals})
    context = {
        "rows": rows,
        "totals": sorted(totals.items()),
        "sinks": sinks,
        "chosen": {"status": status, "sink": sink or ""},
        "at": at_site(wired),
    }
    return _page(request, wired, "outbox.html", {**context, **visitor(request, who)})
