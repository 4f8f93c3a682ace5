"""``/api/commands``: send a signed command to an agent (about one of its devices, or the agent itself), and
follow it (docs/diagnostics.md). Commands are the authenticated engineer's (``requested_by`` in the audit)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from collector.api.auth import Engineer, Staff
from collector.api.deps import Wired
from collector.api.errors import answers
from collector.errors import InvalidError, NotFoundError
from collector.remote import history
from collector.store import queries
from protocol import ProtocolError, format_ts
from protocol.commands import ACTIONS, parse_since

router = APIRouter(tags=["commands"])

Action = Literal["service-tests", "collect-logs", "republish-state", "report-config"]
assert set(get_args(Action)) == set(ACTIONS), "Action must list protocol.commands.ACTIONS"
#: Actions about an agent as a whole: they name an agent (SITE/AGENT), not a device.
AGENT_ACTIONS = frozenset({"republish-state", "report-config"})

CommandId = Annotated[str, Path(min_length=1, max_length=64)]


class CommandRequest(BaseModel):
    """``POST /api/commands``: what to run where."""

    model_config = ConfigDict(extra="forbid")

    action: Action
    device: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="service-tests, collect-logs: DEVICE or SITE/AGENT/DEVICE",
    )
    agent: str | None = Field(
        None, min_length=3, max_length=129, description="republish-state, report-config: SITE/AGENT"
    )
    since: str | None = Field(
        None, max_length=64, description="collect-logs: 30m, 2h, 1d or an RFC 3339 timestamp"
    )
    until: str | None = Field(None, max_length=64)
    units: list[Annotated[str, Field(max_length=128)]] | None = Field(None, max_length=32)
    repeat: int | None = Field(None, ge=1, le=100, description="service-tests: runs per check")
    ticket: str | None = Field(None, min_length=1, max_length=32)
    requested_by: str | None = Field(
        None,
        max_length=64,
        deprecated=True,
        description="ignored: the command is recorded as the authenticated user's",
    )


def _target(body: CommandRequest, wired: Wired) -> tuple[str, str, str | None]:
    commander = wired.remote()
    if body.action in AGENT_ACTIONS:
        if body.device is not None or body.agent is None:
            raise InvalidError(f"{body.action} is about an agent: name it as agent SITE/AGENT, not a device")
        site, agent = commander.find_agent(body.agent)
        return site, agent, None
    if body.agent is not None or body.device is None:
        raise InvalidError(f"{body.action} is about a device: name it as device DEVICE or SITE/AGENT/DEVICE")
    return commander.find_device(body.device)


@router.post("/api/commands", status_code=202, responses=answers(401, 403, 404, 409, 422, 503))
def send(body: CommandRequest, wired: Wired, who: Engineer) -> JSONResponse:
    """Send ``action`` to the agent: 202 with the command's id, 409 when the agent is offline."""
    commander = wired.remote()
    site, agent, device = _target(body, wired)
    args: dict[str, Any] = {}
    now = commander.now()
    for name in ("since", "until"):
        text = getattr(body, name)
        if text is not None:
            try:
                args[name] = format_ts(parse_since(text, now))
            except (ProtocolError, ValueError, OverflowError) as exc:
                raise InvalidError(f"{name}: {exc}") from None
    if body.units is not None:
        args["units"] = body.units
    if body.repeat is not None:
        args["repeat"] = body.repeat
    command_id = commander.request(
        site, agent, body.action, device=device, args=args, ticket=body.ticket, requested_by=who.actor
    )
    return JSONResponse({"command": command_id, "status": f"/api/commands/{command_id}"}, status_code=202)


@router.get("/api/commands", responses=answers(401, 403, 422, 503))
def list_commands(
    wired: Wired,
    who: Staff,
    ticket: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONResponse:
    return JSONResponse(queries.jsonable(history.list_commands(wired.engine, ticket=ticket, limit=limit)))


@router.get("/api/commands/{command_id}", responses=answers(401, 403, 404, 422, 503))
def get_command(command_id: CommandId, wired: Wired, who: Staff) -> JSONResponse:
    item = history.get_command(wired.engine, command_id, wired.remote().now())
    if item is None:
        raise NotFoundError(f"no command {command_id!r}")
    return JSONResponse(queries.jsonable(item))
