"""``/api/agents``: every agent, online or not, and the gaps in its messages; a customer's user sees the
agents that watch its devices."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from collector.api.auth import Reader, scope
from collector.api.deps import Wired
from collector.api.errors import answers
from collector.store import queries

router = APIRouter(tags=["agents"])


@router.get("/api/agents", responses=answers(401, 403))
def list_agents(wired: Wired, who: Reader) -> JSONResponse:
    with wired.engine.connect() as conn:
        seen = scope(conn, who)
        rows = queries.list_agents(conn)
    if seen is not None:
        rows = [row for row in rows if seen.has_agent(row["site"], row["agent"])]
    return JSONResponse(queries.jsonable(rows))
