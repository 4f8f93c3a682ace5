"""``/api/bundles``: log bundles the agents uploaded: list, read one, download it, read one member as text.
Engineers only: a bundle holds (redacted) logs of a customer's room PC."""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlalchemy import select

from collector.api.auth import Engineer
from collector.api.deps import Wired, Wiring
from collector.api.errors import answers
from collector.errors import BadRequestError, GoneError, NotFoundError, TooLargeError
from collector.store import queries
from collector.store.schema import bundles
from diagnostics.bundle import BundleError, MemberTooLargeError, read_member

router = APIRouter(tags=["bundles"])

#: Bundle ids are the store's integers: past 2^63 - 1 no database holds one.
BundleId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def bundle_dict(row: Any) -> dict[str, Any]:
    """A bundle as the API shows it: its row without the server's path, with where to download it."""
    item = dict(row._mapping)
    item.pop("path")
    item["download"] = f"/api/bundles/{row.id}/download"
    return item


def _bundle(wired: Wiring, bundle_id: int) -> Any:
    with wired.engine.connect() as conn:
        row = conn.execute(select(bundles).where(bundles.c.id == bundle_id)).first()
    if row is None:
        raise NotFoundError(f"no bundle {bundle_id}")
    return row


@router.get("/api/bundles", responses=answers(401, 403, 422, 503))
def list_bundles(
    wired: Wired,
    who: Engineer,
    ticket: Annotated[str | None, Query(max_length=32)] = None,
    device: Annotated[str | None, Query(max_length=64)] = None,
) -> JSONResponse:
    query = select(bundles).order_by(bundles.c.created_at.desc())
    if ticket is not None:
        query = query.where(bundles.c.ticket == ticket)
    if device is not None:
        query = query.where(bundles.c.device == device)
    with wired.engine.connect() as conn:
        return JSONResponse(queries.jsonable([bundle_dict(row) for row in conn.execute(query)]))


@router.get("/api/bundles/{bundle_id}", responses=answers(401, 403, 404, 422, 503))
def get_bundle(bundle_id: BundleId, wired: Wired, who: Engineer) -> JSONResponse:
    return JSONResponse(queries.jsonable(bundle_dict(_bundle(wired, bundle_id))))


@router.get(
    "/api/bundles/{bundle_id}/download",
    responses={
        **answers(401, 403, 404, 410, 422, 503),
        200: {"content": {"application/gzip": {}}, "description": "the bundle (tar.gz)"},
    },
    response_class=FileResponse,
)
def download(bundle_id: BundleId, wired: Wired, who: Engineer) -> FileResponse:
    row = _bundle(wired, bundle_id)
    if not FilePath(row.path).is_file():
        raise GoneError(f"bundle {bundle_id} is no longer stored")
    name = f"hezo-{row.site}-{row.agent}-{row.device or 'agent'}-{row.id}.tar.gz"
    return FileResponse(row.path, media_type="application/gzip", filename=name)


@router.get(
    "/api/bundles/{bundle_id}/files/{name:path}",
    responses={
        **answers(401, 403, 404, 410, 422, 503),
        200: {"content": {"text/plain": {}}, "description": "the member, as text"},
    },
    response_class=Response,
)
def bundle_file(
    bundle_id: BundleId, name: Annotated[str, Path(max_length=1024)], wired: Wired, who: Engineer
) -> Response:
    """One member of a bundle as text, read in memory (never extracted); unsafe names are refused."""
    row = _bundle(wired, bundle_id)
    try:
        data = read_member(FilePath(row.path), name, wired.remote().settings.max_shown_bytes)
    except MemberTooLargeError as exc:
        raise TooLargeError(str(exc)) from None
    except BundleError as exc:
        raise BadRequestError(str(exc)) from None
    except KeyError:
        raise NotFoundError(f"bundle {bundle_id} has no member {name!r}") from None
    except OSError:
        raise GoneError(f"bundle {bundle_id} is no longer stored") from None
    return Response(
        data, media_type="text/plain; charset=utf-8", headers={"X-Content-Type-Options": "nosniff"}
    )
