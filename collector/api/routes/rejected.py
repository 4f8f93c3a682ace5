"""``/api/rejected``: messages refused by ingest, newest first, with the reason."""

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from collector.api.deps import Wired
from collector.store import queries

router = APIRouter(tags=["rejected"])


@router.get("/api/rejected")
def list_rejected(wired: Wired, limit: int = Query(100, ge=1, le=1000)) -> JSONResponse:
    with wired.engine.connect() as conn:
        return JSONResponse(queries.jsonable(queries.list_rejected(conn, limit=limit)))
