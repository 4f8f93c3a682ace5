"""``/api/bundles``: log bundles the agents uploaded: list, read one, download it, read one member as text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlalchemy import select

from collector.api.deps import Wired, Wiring
from collector.errors import BadRequestError, GoneError, NotFoundError, TooLargeError
from collector.store import queries
from collector.store.schema import bundles
from diagnostics.bundle import BundleError, MemberTooLargeError, read_member

router = APIRouter(tags=["bundles"])


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


@router.get("/api/bundles")
def list_bundles(wired: Wired, ticket: str | None = None, device: str | None = None) -> JSONResponse:
    query = select(bundles).order_by(bundles.c.created_at.desc())
    if ticket is not None:
        query = query.where(bundles.c.ticket == ticket)
    if device is not None:
        query = query.where(bundles.c.device == device)
    with wired.engine.connect() as conn:
        return JSONResponse(queries.jsonable([bundle_dict(row) for row in conn.execute(query)]))


@router.get("/api/bundles/{bundle_id}")
def get_bundle(bundle_id: int, wired: Wired) -> JSONResponse:
    return JSONResponse(queries.jsonable(bundle_dict(_bundle(wired, bundle_id))))


@router.get("/api/bundles/{bundle_id}/download")
def download(bundle_id: int, wired: Wired) -> FileResponse:
    row = _bundle(wired, bundle_id)
    if not Path(row.path).is_file():
        raise GoneError(f"bundle {bundle_id} is no longer stored")
    name = f"hezo-{row.site}-{row.agent}-{row.device or 'agent'}-{row.id}.tar.gz"
    return FileResponse(row.path, media_type="application/gzip", filename=name)


@router.get("/api/bundles/{bundle_id}/files/{name:path}")
def bundle_file(bundle_id: int, name: str, wired: Wired) -> Response:
    """One member of a bundle as text, read in memory (never extracted); unsafe names are refused."""
    row = _bundle(wired, bundle_id)
    try:
        data = read_member(Path(row.path), name, wired.remote().settings.max_shown_bytes)
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
