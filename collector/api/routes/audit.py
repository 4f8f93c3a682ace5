"""``/api/audit``: who did what, when, newest first (of one command, or about one subject, if asked).
Admins only: it names every user, and every failed login."""

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from collector import audit
from collector.api.auth import Admin
from collector.api.deps import Wired
from collector.api.errors import answers
from collector.store import queries

router = APIRouter(tags=["audit"])


@router.get("/api/audit", responses=answers(401, 403, 422))
def list_audit(
    wired: Wired,
    who: Admin,
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
    command: Annotated[str | None, Query(max_length=64)] = None,
    subject: Annotated[str | None, Query(max_length=128, description="a ticket, contract, user")] = None,
) -> JSONResponse:
    with wired.engine.connect() as conn:
        return JSONResponse(queries.jsonable(audit.list_audit(conn, limit, command, subject)))
