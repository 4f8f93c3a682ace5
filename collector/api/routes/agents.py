"""``/api/agents``: every agent, online or not, and the gaps in its messages."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from collector.api.deps import Wired
from collector.store import queries

router = APIRouter(tags=["agents"])


@router.get("/api/agents")
def list_agents(wired: Wired) -> JSONResponse:
    with wired.engine.connect() as conn:
        return JSONResponse(queries.jsonable(queries.list_agents(conn)))
