"""The one place where errors become HTTP answers: ``{"error": code, "detail": text}`` with the status of the
error's kind (``collector/errors.py``), for the domain's errors, FastAPI's own (``HTTPException``) and bad
requests (422, with pydantic's list of what is wrong in ``detail``)."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
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


def answer(status: int, code: str, detail: object, headers: Mapping[str, str] | None = None) -> Response:
    """The error answer; none has a body on ``HEAD`` (the headers still say why, in ``X-Reason``)."""
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


async def _collector_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CollectorError)
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
