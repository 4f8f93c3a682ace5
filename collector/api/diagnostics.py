"""Web and API routes of remote diagnostics: send commands, follow them, download bundles, receive uploads.

Included by ``collector.api.app.create_app``. Every datetime in JSON is RFC 3339 UTC, as in the rest of
the API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from starlette.requests import ClientDisconnect

from collector import audit
from collector.errors import CollectorError
from collector.remote import history
from collector.remote.commander import Commander
from collector.remote.uploads import UploadProblem, Uploads
from collector.store import queries
from collector.store.schema import bundles
from diagnostics.bundle import BundleError, read_member
from protocol import format_ts
from protocol.commands import ACTIONS, parse_since


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


def _bundle_dict(row: Any) -> dict[str, Any]:
    item = dict(row._mapping)
    item.pop("path")
    item["download"] = f"/api/bundles/{row.id}/download"
    return item


def router(commander: Commander, templates: Jinja2Templates) -> APIRouter:  # noqa: PLR0915
    api = APIRouter()
    uploads = Uploads(commander)
    engine = commander.engine

    @api.get("/diagnostics", response_class=HTMLResponse, include_in_schema=False)
    def page(request: Request) -> Response:
        with engine.connect() as conn:
            context = {
                "devices": queries.list_devices(conn),
                "commands": history.list_commands(engine, limit=30),
                "enabled": commander.enabled,
            }
        return templates.TemplateResponse(request, "diagnostics.html", context)

    @api.post("/api/commands", status_code=202)
    def send(body: CommandRequest) -> JSONResponse:
        if body.action not in ACTIONS:
            raise HTTPException(400, f"action {body.action!r}: expected one of {', '.join(ACTIONS)}")
        try:
            site, agent, device = commander.find_device(body.device)
            args: dict[str, Any] = {}
            now = commander.now()
            for name in ("since", "until"):
                text = getattr(body, name)
                if text is not None:
                    args[name] = format_ts(parse_since(text, now))
            if body.units is not None:
                args["units"] = body.units
            if body.repeat is not None:
                args["repeat"] = body.repeat
            command_id = commander.request(
                site,
                agent,
                body.action,
                device=device,
                args=args,
                ticket=body.ticket,
                requested_by=body.requested_by,
            )
        except CollectorError as exc:
            raise HTTPException(exc.status, str(exc)) from None
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        return JSONResponse({"command": command_id, "status": f"/api/commands/{command_id}"}, status_code=202)

    @api.get("/api/commands")
    def list_commands(ticket: str | None = None, limit: int = Query(100, ge=1, le=1000)) -> JSONResponse:
        return JSONResponse(queries.jsonable(history.list_commands(engine, ticket=ticket, limit=limit)))

    @api.get("/api/commands/{command_id}")
    def get_command(command_id: str) -> JSONResponse:
        item = history.get_command(engine, command_id, commander.now())
        if item is None:
            raise HTTPException(404, f"no command {command_id!r}")
        return JSONResponse(queries.jsonable(item))

    @api.get("/api/audit")
    def list_audit(limit: int = Query(200, ge=1, le=5000), command: str | None = None) -> JSONResponse:
        with engine.connect() as conn:
            return JSONResponse(queries.jsonable(audit.list_audit(conn, limit, command)))

    @api.get("/api/bundles")
    def list_bundles(ticket: str | None = None, device: str | None = None) -> JSONResponse:
        query = select(bundles).order_by(bundles.c.created_at.desc())
        if ticket is not None:
            query = query.where(bundles.c.ticket == ticket)
        if device is not None:
            query = query.where(bundles.c.device == device)
        with engine.connect() as conn:
            return JSONResponse(queries.jsonable([_bundle_dict(r) for r in conn.execute(query)]))

    def _bundle(bundle_id: int) -> Any:
        with engine.connect() as conn:
            row = conn.execute(select(bundles).where(bundles.c.id == bundle_id)).first()
        if row is None:
            raise HTTPException(404, f"no bundle {bundle_id}")
        return row

    @api.get("/api/bundles/{bundle_id}")
    def get_bundle(bundle_id: int) -> JSONResponse:
        return JSONResponse(queries.jsonable(_bundle_dict(_bundle(bundle_id))))

    @api.get("/api/bundles/{bundle_id}/download")
    def download(bundle_id: int) -> FileResponse:
        row = _bundle(bundle_id)
        if not Path(row.path).is_file():
            raise HTTPException(410, f"bundle {bundle_id} is no longer stored")
        name = f"hezo-{row.site}-{row.agent}-{row.device or 'agent'}-{row.id}.tar.gz"
        return FileResponse(row.path, media_type="application/gzip", filename=name)

    @api.get("/api/bundles/{bundle_id}/files/{name:path}")
    def bundle_file(bundle_id: int, name: str) -> Response:
        """One member of a bundle as text, read in memory (never extracted); unsafe names are refused."""
        row = _bundle(bundle_id)
        try:
            data = read_member(Path(row.path), name)
        except BundleError as exc:
            raise HTTPException(400, str(exc)) from None
        except KeyError:
            raise HTTPException(404, f"bundle {bundle_id} has no member {name!r}") from None
        except OSError:
            raise HTTPException(410, f"bundle {bundle_id} is no longer stored") from None
        return Response(
            data, media_type="text/plain; charset=utf-8", headers={"X-Content-Type-Options": "nosniff"}
        )

    @api.get("/api/tickets/{number}/diagnostics")
    def ticket_diagnostics(number: str) -> JSONResponse:
        with engine.connect() as conn:
            rows = conn.execute(select(bundles).where(bundles.c.ticket == number)).all()
        found = {
            "commands": history.list_commands(engine, ticket=number),
            "bundles": [_bundle_dict(r) for r in rows],
        }
        return JSONResponse(queries.jsonable(found))

    def _problem(exc: UploadProblem) -> Response:
        headers = {"Upload-Offset": str(exc.offset)} if exc.offset is not None else {}
        return JSONResponse({"detail": exc.reason}, status_code=exc.status, headers=headers)

    @api.head("/api/uploads/{command_id}")
    def upload_offset(command_id: str, authorization: str | None = Header(None)) -> Response:
        try:
            offset, stored = uploads.offset(command_id, authorization)
        except UploadProblem as exc:
            return Response(status_code=exc.status, headers={"X-Reason": exc.reason[:200]})
        headers = {"Upload-Offset": str(offset), "Cache-Control": "no-store"}
        if stored is not None:  # complete: say which bundle it became
            headers.update({"Hezo-Bundle": str(stored["bundle"]), "Upload-Sha256": stored["sha256"]})
        return Response(status_code=200, headers=headers)

    @api.patch("/api/uploads/{command_id}")
    async def upload_append(  # noqa: PLR0917
        command_id: str,
        request: Request,
        authorization: str | None = Header(None),
        upload_offset: int = Header(..., ge=0),
        upload_length: int = Header(..., ge=1),
        upload_sha256: str = Header(...),
    ) -> Response:
        try:
            done = await uploads.append(
                command_id, authorization, upload_offset, upload_length, upload_sha256, request.stream()
            )
        except UploadProblem as exc:
            return _problem(exc)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody reads it; what arrived is kept
        if isinstance(done, int):
            return Response(status_code=204, headers={"Upload-Offset": str(done)})
        return JSONResponse(done, status_code=201, headers={"Upload-Offset": str(done["size"])})

    return api
