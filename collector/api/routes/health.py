"""``/healthz`` (the database answers, and nothing the service reports is wrong): open to anyone, for probes
and load balancers. ``/metrics`` (the collector's own figures, the fleet's totals, the tickets) and
``/metrics/fleet`` (a series per device and per agent): open to clients on loopback that did not come
through a proxy (a local Prometheus or node agent), else they need a token of the provider's staff
(docs/security.md)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from collector.api.auth import authenticate
from collector.api.deps import Wired
from collector.api.hosts import is_loopback
from collector.errors import ForbiddenError
from collector.people import Person

router = APIRouter(tags=["health"])

#: Headers a reverse proxy adds: a request carrying one came from elsewhere, whatever its peer address.
PROXY_HEADERS = ("x-forwarded-for", "x-real-ip", "forwarded")


@router.get("/healthz")
def healthz(wired: Wired) -> JSONResponse:
    try:
        with wired.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        reason = f"the database does not answer: {type(exc).__name__}"
        return JSONResponse({"status": "unhealthy", "reason": reason}, status_code=503)
    problem = wired.health() if wired.health is not None else None
    if problem is not None:
        return JSONResponse({"status": "unhealthy", "reason": problem}, status_code=503)
    return JSONResponse({"status": "ok"})


def metrics_reader(request: Request, wired: Wired) -> Person | None:
    """None for a local scraper; else the staff user its token names (401, 403 otherwise)."""
    local = request.client is not None and is_loopback(request.client.host)
    if local and not any(name in request.headers for name in PROXY_HEADERS):
        return None
    who = authenticate(request, wired, None, None)
    if who.customer is not None:
        raise ForbiddenError("this is for the provider's staff, not for a customer's users")
    return who


@router.get("/metrics", include_in_schema=False)
def metrics(wired: Wired, _who: Annotated[Person | None, Depends(metrics_reader)]) -> Response:
    return Response(generate_latest(wired.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/metrics/fleet", include_in_schema=False)
def fleet_metrics(wired: Wired, _who: Annotated[Person | None, Depends(metrics_reader)]) -> Response:
    return Response(generate_latest(wired.fleet_registry), media_type=CONTENT_TYPE_LATEST)
