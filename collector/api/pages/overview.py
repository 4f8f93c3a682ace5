"""``/`` (agents, devices, tickets, coverage warnings) and ``/diagnostics`` (service tests and log pulls, with
their commands); times shown in UTC."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Connection

from collector import tickets
from collector.api.auth import PageReader, PageStaff, scope
from collector.api.deps import Wired
from collector.api.pages.board import visitor
from collector.notify import outbox
from collector.registry import contracts
from collector.remote import history
from collector.store import queries

#: Devices listed on the overview, the worst first (the counts are of all of them; ``/fleet`` has the rest).
DEVICES = 200
STATE_COLOURS = {"up": "#1a7f37", "degraded": "#9a6700", "down": "#cf222e", "unknown": "#6e7781"}

router = APIRouter(include_in_schema=False)


def utc(value: Any) -> str:
    """A datetime for the page: UTC, to the second; empty for None."""
    if value is None:
        return ""
    return str(value.strftime("%Y-%m-%d %H:%M:%S UTC"))


def _delivery_counts(conn: Connection) -> dict[str, int]:
    totals = dict.fromkeys((outbox.PENDING, outbox.SENT, outbox.DEAD), 0)
    for (_sink, status), count in outbox.counts(conn).items():
        totals[status] = totals.get(status, 0) + count
    return totals


@router.get("/", response_class=HTMLResponse)
def index(request: Request, wired: Wired, who: PageReader) -> Response:
    """The overview; a customer's user sees its own sites, devices and tickets, and nothing of the
    provider's own (rejected messages, notifications). Devices are counted by state in the store and only
    the worst ``DEVICES`` are read, so the page costs the same whatever the fleet's size."""
    with wired.engine.connect() as conn:
        seen = scope(conn, who)
        where = seen.where if seen is not None else None
        coverage = contracts.device_coverage(conn, wired.today_of, wired.rules.contract_warning_days)
        counts = queries.count_devices(conn, where)
        context: dict[str, Any] = {
            "agents": queries.list_agents(conn),
            "counts": counts,
            "total": sum(counts.values()),
            "devices": queries.worst_devices(conn, DEVICES, where),
            "tickets": tickets.list_tickets(conn),
            "coverage": [row for row in coverage if row["warning"] is not None],
            "colours": STATE_COLOURS,
            **visitor(request, who),
        }
        if seen is None:
            context["rejected_count"] = queries.count_rejected(conn)
            context["notify"] = _delivery_counts(conn)
            context["dead"] = outbox.list_deliveries(conn, status=outbox.DEAD, limit=20)
        else:
            context["agents"] = [a for a in context["agents"] if seen.has_agent(a["site"], a["agent"])]
            context["tickets"] = [t for t in context["tickets"] if seen.has_ticket(t)]
            context["coverage"] = [
                c for c in context["coverage"] if seen.has_device(c["site"], c["agent"], c["device"])
            ]
            context["dead"] = []
    return wired.templates.TemplateResponse(
        request, "index.html", context, headers={"Cache-Control": "no-store"}
    )


@router.get("/diagnostics", response_class=HTMLResponse)
def diagnostics(request: Request, wired: Wired, who: PageStaff) -> Response:
    commander = wired.remote()
    with wired.engine.connect() as conn:
        context = {
            "devices": queries.list_devices(conn),
            "commands": history.list_commands(wired.engine, limit=30),
            "enabled": commander.enabled,
            **visitor(request, who),
        }
    return wired.templates.TemplateResponse(
        request, "diagnostics.html", context, headers={"Cache-Control": "no-store"}
    )
