"""``/api/outbox``: ticket notifications and how their delivery to each sink went; dead ones sent again."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from collector.api.deps import Wired
from collector.notify import outbox
from collector.store import queries

router = APIRouter(tags=["outbox"])


class RetryBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[int] | None = Field(default=None, max_length=10000, description="dead deliveries; none: all")


@router.get("/api/outbox")
def list_deliveries(
    wired: Wired,
    status: str | None = Query(None, pattern="^(pending|sent|dead)$"),
    limit: int = Query(100, ge=1, le=5000),
) -> JSONResponse:
    with wired.engine.connect() as conn:
        return JSONResponse(queries.jsonable(outbox.list_deliveries(conn, status=status, limit=limit)))


@router.post("/api/outbox/retry")
def retry(body: RetryBody, wired: Wired) -> JSONResponse:
    with wired.engine.begin() as conn:
        count = outbox.retry(conn, wired.now(), body.ids)
    return JSONResponse({"retried": count})
