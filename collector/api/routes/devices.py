"""``/api/devices``: every device the agents watch (``include_retired`` for those no longer listed); a
customer's user sees the devices under its contracts."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from collector.api.auth import Reader, scope
from collector.api.deps import Wired
from collector.api.errors import answers
from collector.store import queries

router = APIRouter(tags=["devices"])


@router.get("/api/devices", responses=answers(401, 403, 422))
def list_devices(wired: Wired, who: Reader, include_retired: bool = False) -> JSONResponse:
    with wired.engine.connect() as conn:
        seen = scope(conn, who)
        rows = queries.list_devices(conn, include_retired=include_retired)
    if seen is not None:
        rows = [row for row in rows if seen.has_device(row["site"], row["agent"], row["device"])]
    return JSONResponse(queries.jsonable(rows))
