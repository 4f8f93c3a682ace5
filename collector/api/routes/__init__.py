"""One router per resource, found from its URL (``/api/tickets/...`` is ``tickets.py``). ``ROUTERS`` are
always served; ``REMOTE`` only by an app with remote diagnostics (a ``Commander``)."""

from fastapi import APIRouter

from collector.api.routes import (
    agents,
    audit,
    bundles,
    commands,
    contracts,
    devices,
    health,
    maintenance,
    me,
    outbox,
    rejected,
    sla,
    tickets,
    uploads,
)

ROUTERS: tuple[APIRouter, ...] = (
    agents.router,
    devices.router,
    tickets.router,
    contracts.router,
    maintenance.router,
    sla.router,
    rejected.router,
    outbox.router,
    health.router,
    me.router,
)

REMOTE: tuple[APIRouter, ...] = (commands.router, audit.router, bundles.router, uploads.router)
