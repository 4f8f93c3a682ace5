"""The collector's web side: a server-rendered overview page, a JSON API, /healthz and /metrics.

Every datetime in JSON is RFC 3339 UTC (``2026-11-24T21:50:02.114Z``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from collector import tickets
from collector.api import diagnostics as web_diag
from collector.api import tickets as ticketapi
from collector.config import IncidentsConfig
from collector.registry import contracts
from collector.remote.commander import Commander
from collector.sla.terms import SlaContext
from collector.store import queries
from collector.store.database import utcnow

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATE_COLOURS = {"up": "#1a7f37", "degraded": "#9a6700", "down": "#cf222e", "unknown": "#6e7781"}


def _local(value: Any) -> str:
    """A datetime for the page: UTC, to the second; empty for None."""
    if value is None:
        return ""
    return str(value.strftime("%Y-%m-%d %H:%M:%S UTC"))


def create_app(
    engine: Engine,
    registry: CollectorRegistry | None = None,
    *,
    health: Callable[[], str | None] | None = None,
    sla: SlaContext | None = None,
    rules: IncidentsConfig | None = None,
    now: Callable[[], datetime] = utcnow,
    diagnostics: Commander | None = None,
) -> FastAPI:
    """The web application over ``engine``; ``/metrics`` exposes ``registry`` (an empty one if None).

    ``health`` tells ``/healthz`` what else is wrong (None: nothing), such as a dead writer thread or a lost
    broker connection; without it, ``/healthz`` checks the database only.
    """
    app = FastAPI(title="hezo collector", version="0.1.0")
    metrics_registry = registry if registry is not None else CollectorRegistry()
    templates = Jinja2Templates(directory=str(TEMPLATES))
    templates.env.filters["when"] = _local
    if diagnostics is not None:  # remote diagnostics: collector/web_diag.py
        app.include_router(web_diag.router(diagnostics, templates))
    context_sla = sla if sla is not None else SlaContext.default()
    incident_rules = rules if rules is not None else IncidentsConfig()
    app.include_router(ticketapi.router(engine, context_sla, incident_rules, now))

    def today_of(site: str) -> date:
        return context_sla.calendars[site].local(now()).date()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(request: Request) -> Response:
        with engine.connect() as conn:
            context = {
                "agents": queries.list_agents(conn),
                "devices": queries.list_devices(conn),
                "tickets": tickets.list_tickets(conn),
                "rejected_count": queries.count_rejected(conn),
                "coverage": [
                    row
                    for row in contracts.device_coverage(conn, today_of, incident_rules.contract_warning_days)
                    if row["warning"] is not None
                ],
                "colours": STATE_COLOURS,
            }
        return templates.TemplateResponse(request, "index.html", context)

    @app.get("/api/agents")
    def api_agents() -> JSONResponse:
        with engine.connect() as conn:
            return JSONResponse(queries.jsonable(queries.list_agents(conn)))

    @app.get("/api/devices")
    def api_devices(include_retired: bool = False) -> JSONResponse:
        with engine.connect() as conn:
            rows = queries.list_devices(conn, include_retired=include_retired)
            return JSONResponse(queries.jsonable(rows))

    @app.get("/api/tickets")
    def api_tickets() -> JSONResponse:
        with engine.connect() as conn:
            return JSONResponse(queries.jsonable(tickets.list_tickets(conn)))

    @app.get("/api/tickets/{number}")
    def api_ticket(number: str) -> JSONResponse:
        with engine.connect() as conn:
            ticket = tickets.get_ticket(conn, number)
        if ticket is None:
            raise HTTPException(status_code=404, detail=f"no ticket numbered {number!r}")
        return JSONResponse(queries.jsonable(ticket))

    @app.get("/api/rejected")
    def api_rejected(limit: int = Query(100, ge=1, le=1000)) -> JSONResponse:
        with engine.connect() as conn:
            return JSONResponse(queries.jsonable(queries.list_rejected(conn, limit=limit)))

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            reason = f"the database does not answer: {type(exc).__name__}"
            return JSONResponse({"status": "unhealthy", "reason": reason}, status_code=503)
        problem = health() if health is not None else None
        if problem is not None:
            return JSONResponse({"status": "unhealthy", "reason": problem}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(metrics_registry), media_type=CONTENT_TYPE_LATEST)

    return app
