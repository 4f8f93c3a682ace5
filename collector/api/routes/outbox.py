"""``/api/outbox``: ticket notifications and how their delivery to each sink went; dead ones sent again
(by an engineer, audited)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from collector.api.auth import Engineer, Staff
from collector.api.deps import Wired
from collector.api.errors import answers
from collector.notify import outbox
from collector.store import queries

router = APIRouter(tags=["outbox"])

DeliveryId = Annotated[int, Field(ge=1, le=2**63 - 1)]


class RetryBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[DeliveryId] | None = Field(
        default=None, max_length=10000, description="dead deliveries; none: all"
    )


@router.get("/api/outbox", responses=answers(401, 403, 422))
def list_deliveries(
    wired: Wired,
    who: Staff,
    status: Literal["pending", "sent", "dead"] | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 100,
) -> JSONResponse:
    with wired.engine.connect() as conn:
        return JSONResponse(queries.jsonable(outbox.list_deliveries(conn, status=status, limit=limit)))


@router.post("/api/outbox/retry", responses=answers(401, 403, 404, 422))
def retry(body: RetryBody, wired: Wired, who: Engineer) -> JSONResponse:
    with wired.engine.begin() as conn:
        count = outbox.retry(conn, wired.now(), body.ids, by=who.actor)
    return JSONResponse({"retried": count})
