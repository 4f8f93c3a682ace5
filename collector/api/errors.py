"""The one place where errors become HTTP answers: ``{"error": code, "detail": text}`` with the status of the
error's kind (``collector/errors.py``), for the domain's errors, FastAPI's own (``HTTPException``) and bad
requests (422, with pydantic's list of what is wrong in ``detail``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from collector.errors import CollectorError

#: The ``error`` code of an HTTP status FastAPI or Starlette answers by itself.
_CODES = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    410: "gone",
    413: "too-large",
    422: "invalid",
    423: "locked",
    429: "too-many-requests",
    503: "unavailable",
}


class ErrorBody(BaseModel):
    """Every error answer: a code (``not-found``, ``conflict``...) and what is wrong."""

    error: str = Field(description="the kind of error: unauthorized, forbidden, not-found, invalid...")
    detail: Any = Field(
        description="what is wrong; for a body that does not parse, pydantic's list of errors"
    )


#: What each status means, in every operation of the OpenAPI document that answers it.
_MEANINGS = {
    400: "a Host header not in web.allowed_hosts, or a request that cannot be taken as asked",
    401: "no credentials, or a token or session that is not good (log in, or send a token)",
    403: "the role is too low for this, or a session's change came without its CSRF token",
    404: "not found (to a customer's user, also whatever is outside its scope)",
    409: "the current state does not allow it",
    410: "no longer stored",
    413: "too large",
    422: "a field or value that is not valid",
    423: "locked by another request",
    503: "the part this needs is off (remote diagnostics without a key)",
}


def answers(*statuses: int, body: bool = True) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route that answers ``statuses`` (and 400, as every route does for a Host not
    allowed), each with the error body (none for ``HEAD``: ``body=False``, the reason in ``X-Reason``)."""
    if not body:
        reason = {"X-Reason": {"description": "why", "schema": {"type": "string"}}}
        return {
            status: {"description": _MEANINGS[status], "headers": reason}
            for status in sorted({400, *statuses})
        }
    return {
        status: {"model": ErrorBody, "description": _MEANINGS[status]} for status in sorted({400, *statuses})
    }


def answer(status: int, code: str, detail: object, headers: Mapping[str, str] | None = None) -> Response:
    """The error answer; none has a body on ``HEAD`` (the headers still say why, in ``X-Reason``)."""
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


async def _collector_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CollectorError)
    back_to = getattr(exc, "back_to", None)
    if back_to is not None:  # a page asked for without a session: to the login form, and back after it
        return RedirectResponse(f"/login?next={quote(back_to, safe='/')}", status_code=303)
    headers = exc.headers()
    if request.method == "HEAD":
        reason = "".join(char if char.isprintable() else " " for char in str(exc))[:200]
        return Response(status_code=exc.status, headers={**headers, "X-Reason": reason})
    return answer(exc.status, exc.code, str(exc), headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return answer(exc.status_code, _CODES.get(exc.status_code, "error"), exc.detail, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return answer(422, "invalid", jsonable_encoder(exc.errors()))


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(CollectorError, _collector_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
