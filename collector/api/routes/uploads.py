"""``/api/uploads/{command}``: agents upload log bundles here, resumably (``HEAD`` says how much is held,
``PATCH`` appends), with the one-time token of their command (docs/diagnostics.md, "Upload protocol").
A refusal is an ``UploadProblem`` with the protocol's own status and, where to resume, ``Upload-Offset``."""

from __future__ import annotations

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from collector.api.deps import Wired, Wiring
from collector.remote.uploads import Uploads

router = APIRouter(tags=["uploads"])


def _uploads(wired: Wiring) -> Uploads:
    if wired.uploads is None:
        wired.uploads = Uploads(wired.remote())
    return wired.uploads


@router.head("/api/uploads/{command_id}")
def upload_offset(command_id: str, wired: Wired, authorization: str | None = Header(None)) -> Response:
    offset, stored = _uploads(wired).offset(command_id, authorization)
    headers = {"Upload-Offset": str(offset), "Cache-Control": "no-store"}
    if stored is not None:  # complete: say which bundle it became
        headers.update({"Hezo-Bundle": str(stored["bundle"]), "Upload-Sha256": stored["sha256"]})
    return Response(status_code=200, headers=headers)


@router.patch("/api/uploads/{command_id}")
async def upload_append(  # noqa: PLR0917
    command_id: str,
    request: Request,
    wired: Wired,
    authorization: str | None = Header(None),
    upload_offset: int = Header(..., ge=0),
    upload_length: int = Header(..., ge=1),
    upload_sha256: str = Header(...),
) -> Response:
    try:
        done = await _uploads(wired).append(
            command_id, authorization, upload_offset, upload_length, upload_sha256, request.stream()
        )
    except ClientDisconnect:
        return Response(status_code=400)  # nobody reads it; what arrived is kept
    if isinstance(done, int):
        return Response(status_code=204, headers={"Upload-Offset": str(done)})
    return JSONResponse(done, status_code=201, headers={"Upload-Offset": str(done["size"])})
