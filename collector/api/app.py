"""The collector's web app: the HTML pages, the JSON API (one router per resource in ``routes/``), /healthz
and /metrics, and one error mapping (``errors``).

Every datetime in JSON is RFC 3339 UTC (``2026-11-24T21:50:02.114Z``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from collector.api import errors, live, login, pages
from collector.api.deps import Wiring
from collector.api.hosts import AllowedHosts
from collector.api.routes import REMOTE, ROUTERS
from collector.config import IncidentsConfig, WebConfig
from collector.remote.commander import Commander
from collector.sla.terms import SlaContext
from collector.store.database import utcnow


def create_app(
    engine: Engine,
    registry: CollectorRegistry | None = None,
    *,
    fleet_registry: CollectorRegistry | None = None,
    health: Callable[[], str | None] | None = None,
    sla: SlaContext | None = None,
    rules: IncidentsConfig | None = None,
    now: Callable[[], datetime] = utcnow,
    diagnostics: Commander | None = None,
    web: WebConfig | None = None,
) -> FastAPI:
    """The web application over ``engine``; ``/metrics`` exposes ``registry`` and ``/metrics/fleet``
    ``fleet_registry`` (empty ones if None).

    ``health`` tells ``/healthz`` what else is wrong (None: nothing), such as a dead writer thread or a lost
    broker connection; without it, ``/healthz`` checks the database only. ``diagnostics``: the commander of
    remote diagnostics; without it the command, audit, bundle and upload routes are not served. ``web``: the
    Host allow-list and how sessions work (``WebConfig()``'s defaults: loopback names only).

    Every route but ``/healthz``, ``/login`` and the agents' uploads (their own one-time tokens) needs a
    user (``api/auth.py``); ``/metrics`` and ``/metrics/fleet`` are open to loopback clients not behind a
    proxy.
    """
    web = web if web is not None else WebConfig()
    app = FastAPI(
        title="hezo collector",
        version="0.1.0",
        description="Tickets, devices and remote diagnostics of hezo. Send an API token as "
        "`Authorization: Bearer hezo_...` (docs/security.md).",
        docs_url=None,
        redoc_url=None,
    )
    app.state.wiring = Wiring(
        engine=engine,
        sla=sla if sla is not None else SlaContext.default(),
        rules=rules if rules is not None else IncidentsConfig(),
        now=now,
        templates=pages.templates(),
        registry=registry if registry is not None else CollectorRegistry(),
        fleet_registry=fleet_registry if fleet_registry is not None else CollectorRegistry(),
        health=health,
        commander=diagnostics,
        web=web,
    )
    errors.install(app)
    app.add_middleware(AllowedHosts, names=web.allowed_hosts)
    app.include_router(login.router)
    app.include_router(pages.router)
    app.include_router(live.router)
    _serve_assets(app)
    for router in ROUTERS:
        app.include_router(router)
    if diagnostics is not None:
        for router in REMOTE:
            app.include_router(router)
    return app


def _serve_assets(app: FastAPI) -> None:
    """``/static`` (the pages' script and style) and ``/docs`` (Swagger UI from the ``swagger-ui-bundle``
    package): every file a page loads comes from the collector, so the console and the API's docs work
    without the internet."""
    import swagger_ui_bundle

    app.mount("/static/swagger", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger")
    app.mount("/static", StaticFiles(directory=pages.STATIC), name="static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="hezo collector: API",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/swagger/favicon-32x32.png",
            oauth2_redirect_url="/docs/oauth2-redirect",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    def docs_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
