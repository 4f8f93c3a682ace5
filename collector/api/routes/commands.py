"""``/api/commands``: send a signed command to a device's agent, and follow it (docs/diagnostics.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from collector.api.deps import Wired
from collector.errors import InvalidError, NotFoundError
from collector.remote import history
from collector.store import queries
from protocol import ProtocolError, format_ts
from protocol.commands import ACTIONS, parse_since

router = APIRouter(tags=["commands"])


class CommandRequest(BaseModel):
    """``POST /api/commands``: what to run where."""

    model_config = ConfigDict(extra="forbid")

    action: str = Field(description=f"one of {', '.join(ACTIONS)}")
    device: str = Field(description="DEVICE or SITE/AGENT/DEVICE")
    since: str | None = Field(None, description="collect-logs: 30m, 2h, 1d or an RFC 3339 timestamp")
    until: str | None = None
    units: list[str] | None = None
    repeat: int | None = Field(None, ge=1, le=100, description="service-tests: runs per check")
    ticket: str | None = None
    requested_by: str = Field("web", max_length=64)


@router.post("/api/commands", status_code=202)
def send(body: CommandRequest, wired: Wired) -> JSONResponse:
    commander = wired.remote()
    if body.action not in ACTIONS:
        raise InvalidError(f"action {body.action!r}: expected one of {', '.join(ACTIONS)}")
    site, agent, device = commander.find_device(body.device)
    args: dict[str, Any] = {}
    now = commander.now()
    for name in ("since", "until"):
        text = getattr(body, name)
        if text is not None:
            try:
                args[name] = format_ts(parse_since(text, now))
            except (ProtocolError, ValueError) as exc:
                raise InvalidError(f"{name}: {exc}") from None
    if body.units is not None:
        args["units"] = body.units
    if body.repeat is not None:
        args["repeat"] = body.repeat
    command_id = commander.request(
        site, agent, body.action, device=device, args=args, ticket=body.ticket, requested_by=body.requested_by
    )
    return JSONResponse({"command": command_id, "status": f"/api/commands/{command_id}"}, status_code=202)


@router.get("/api/commands")
def list_commands(
    wired: Wired, ticket: str | None = None, limit: int = Query(100, ge=1, le=1000)
) -> JSONResponse:
    return JSONResponse(queries.jsonable(history.list_commands(wired.engine, ticket=ticket, limit=limit)))


@router.get("/api/commands/{command_id}")
def get_command(command_id: str, wired: Wired) -> JSONResponse:
    item = history.get_command(wired.engine, command_id, wired.remote().now())
    if item is None:
        raise NotFoundError(f"no command {command_id!r}")
    return JSONResponse(queries.jsonable(item))
