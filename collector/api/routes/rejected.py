"""``/api/rejected``: messages refused by ingest, newest first, with the reason (the provider's staff only:
they may come from any agent)."""

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from collector.api.auth import Staff
from collector.api.deps import Wired
from collector.api.errors import answers
from collector.store import queries

router = APIRouter(tags=["rejected"])


@router.get("/api/rejected", responses=answers(401, 403, 422))
def list_rejected(
    wired: Wired, who: Staff, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> JSONResponse:
    with wired.engine.connect() as conn:
        return JSONResponse(queries.jsonable(queries.list_rejected(conn, limit=limit)))
