"""``/api/audit``: who did what, when, newest first (of one command if asked)."""

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from collector import audit
from collector.api.deps import Wired
from collector.store import queries

router = APIRouter(tags=["audit"])


@router.get("/api/audit")
def list_audit(
    wired: Wired, limit: int = Query(200, ge=1, le=5000), command: str | None = None
) -> JSONResponse:
    with wired.engine.connect() as conn:
        return JSONResponse(queries.jsonable(audit.list_audit(conn, limit, command)))
