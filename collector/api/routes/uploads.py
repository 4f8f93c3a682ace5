"""``/api/uploads/{command}``: agents upload log bundles here, resumably (``HEAD`` says how much is held,
``PATCH`` appends), with the one-time token of their command (docs/diagnostics.md, "Upload protocol"), not
a user's. A refusal is an ``UploadProblem`` with the protocol's own status and, where to resume,
``Upload-Offset``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from collector.api.deps import Wired, Wiring
from collector.api.errors import answers
from collector.remote.uploads import UploadProblem, Uploads

router = APIRouter(tags=["uploads"])

CommandId = Annotated[str, Path(min_length=1, max_length=64)]
Size = Annotated[int, Header(ge=0, le=2**63 - 1)]


def _uploads(wired: Wiring) -> Uploads:
    if wired.uploads is None:
        wired.uploads = Uploads(wired.remote())
    return wired.uploads


def upload_token_sent(authorization: Annotated[str | None, Header()] = None) -> None:
    """401 at once for a request without the upload token, before its other headers are looked at."""
    if not authorization:
        raise UploadProblem(401, "missing Authorization: Bearer <upload token>")


@router.head(
    "/api/uploads/{command_id}",
    response_class=Response,
    responses={
        **answers(401, 403, 404, 410, 422, 503, body=False),
        200: {"description": "the bytes held, in Upload-Offset"},
    },
    dependencies=[Depends(upload_token_sent)],
)
def upload_offset(
    command_id: CommandId, wired: Wired, authorization: Annotated[str | None, Header()] = None
) -> Response:
    offset, stored = _uploads(wired).offset(command_id, authorization)
    headers = {"Upload-Offset": str(offset), "Cache-Control": "no-store"}
    if stored is not None:  # complete: say which bundle it became
        headers.update({"Hezo-Bundle": str(stored["bundle"]), "Upload-Sha256": stored["sha256"]})
    return Response(status_code=200, headers=headers)


@router.patch(
    "/api/uploads/{command_id}",
    status_code=204,
    responses={
        **answers(401, 403, 404, 409, 410, 413, 422, 423, 503),
        201: {"description": "the last byte arrived and the bundle is stored: {bundle, sha256, size}"},
        204: {"description": "stored; send the rest from Upload-Offset"},
    },
    dependencies=[Depends(upload_token_sent)],
)
async def upload_append(  # noqa: PLR0917
    command_id: CommandId,
    request: Request,
    wired: Wired,
    upload_offset: Size,
    upload_length: Size,
    upload_sha256: Annotated[str, Header(max_length=64)],
    authorization: Annotated[str | None, Header()] = None,
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
