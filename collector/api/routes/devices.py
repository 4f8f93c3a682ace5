"""``/api/devices``: every device the agents watch (``include_retired`` for those no longer listed)."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from collector.api.deps import Wired
from collector.store import queries

router = APIRouter(tags=["devices"])


@router.get("/api/devices")
def list_devices(wired: Wired, include_retired: bool = False) -> JSONResponse:
    with wired.engine.connect() as conn:
        rows = queries.list_devices(conn, include_retired=include_retired)
    return JSONResponse(queries.jsonable(rows))
