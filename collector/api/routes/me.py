"""``/api/me``: who the request is authenticated as (a script can check its token with it)."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from collector.api.auth import Reader
from collector.api.errors import answers

router = APIRouter(tags=["me"])


@router.get("/api/me", responses=answers(401, 403))
def me(request: Request, who: Reader) -> JSONResponse:
    """The user's name, role and customer (none for the provider's staff), and how it logged in."""
    return JSONResponse(
        {
            "name": who.name,
            "role": who.role.value,
            "customer": who.customer,
            "via": getattr(request.state, "via", None),
        }
    )
