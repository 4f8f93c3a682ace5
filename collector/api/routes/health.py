"""``/healthz`` (the database answers, and nothing the service reports is wrong) and ``/metrics``."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from collector.api.deps import Wired

router = APIRouter(tags=["health"])


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


@router.get("/metrics", include_in_schema=False)
def metrics(wired: Wired) -> Response:
    return Response(generate_latest(wired.registry), media_type=CONTENT_TYPE_LATEST)
