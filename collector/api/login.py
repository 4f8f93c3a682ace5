"""``/login`` and ``/logout``: the web page's session.

``GET /login`` shows the form with a login CSRF token (also set as the ``hezo_login`` cookie: a form another
site posts cannot know it). ``POST /login`` checks the user's password (argon2id) and answers with the
session cookie: HttpOnly, SameSite=Strict, Secure behind HTTPS, for ``web.session_hours``. ``POST /logout``
(a form carrying the session's CSRF token) ends the session in the store. Failed logins are audited, and
after ``MAX_FAILURES`` within ``FAILURE_WINDOW`` from one address that address waits (429).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from datetime import timedelta
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from collector.api.auth import SESSION_COOKIE
from collector.api.deps import Wired, Wiring
from collector.errors import BadRequestError, CollectorError, ForbiddenError
from collector.people import sessions, users

router = APIRouter(include_in_schema=False)

LOGIN_COOKIE = "hezo_login"
MAX_FORM_BYTES = 8192
MAX_FAILURES = 10
FAILURE_WINDOW = 300.0


class TooManyAttemptsError(CollectorError):
    code = "too-many-requests"
    status = 429


class _Failures:
    """Failed logins per client address within the window (in memory: one web server's view)."""

    def __init__(self) -> None:
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float]:
        times = self._seen.setdefault(address, deque())
        while times and times[0] < now - FAILURE_WINDOW:
            times.popleft()
        return times

    def check(self, address: str) -> None:
        with self._lock:
            if len(self._recent(address, time.monotonic())) >= MAX_FAILURES:
                raise TooManyAttemptsError(f"too many failed logins from {address}; wait a few minutes")

    def add(self, address: str) -> None:
        with self._lock:
            self._recent(address, time.monotonic()).append(time.monotonic())
            if len(self._seen) > 10_000:  # forget the quiet ones
                self._seen = {k: v for k, v in self._seen.items() if v}


def _failures(request: Request) -> _Failures:
    state = request.app.state
    if not hasattr(state, "login_failures"):
        state.login_failures = _Failures()
    found: _Failures = state.login_failures
    return found


def _secure(request: Request, wired: Wiring) -> bool:
    return wired.web.https or request.url.scheme == "https"


def _next(target: str | None) -> str:
    """Where to go after logging in: a path of this site only (never ``//elsewhere`` or a full URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


async def _form(request: Request) -> dict[str, str]:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise BadRequestError("expected a form (application/x-www-form-urlencoded)")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise BadRequestError("the form is too large")
    fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
    return {name: values[0] for name, values in fields.items()}


def _page(request: Request, wired: Wiring, target: str, problem: str | None, status: int) -> Response:
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
    response = wired.templates.TemplateResponse(
        request,
        "login.html",
        {"csrf": token, "next": target, "problem": problem},
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )
    response.set_cookie(
        LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request, wired), max_age=3600
    )
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, wired: Wired, next: str | None = None) -> Response:  # noqa: A002
    return _page(request, wired, _next(next), None, 200)


@router.post("/login", response_class=HTMLResponse)
async def log_in(request: Request, wired: Wired) -> Response:
    address = request.client.host if request.client else "unknown"
    _failures(request).check(address)
    form = await _form(request)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not secrets.compare_digest(form.get("csrf_token", "").encode(), expected.encode()):
        raise ForbiddenError("the login form's CSRF token is missing or wrong: load /login again")
    target = _next(form.get("next"))

    def check() -> tuple[str, str] | None:
        with wired.engine.begin() as conn:
            person = users.log_in(conn, form.get("username", ""), form.get("password", ""), now=wired.now())
            if person is None:
                return None
            lifetime = timedelta(hours=wired.web.session_hours)
            return sessions.start(conn, person, wired.session_key(conn), now=wired.now(), lifetime=lifetime)

    started = await run_in_threadpool(check)
    if started is None:
        _failures(request).add(address)
        return _page(request, wired, target, "Wrong user name or password.", 401)
    cookie, _csrf = started
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=int(wired.web.session_hours * 3600),
        httponly=True,
        samesite="strict",
        secure=_secure(request, wired),
        path="/",
    )
    response.delete_cookie(LOGIN_COOKIE)
    return response


@router.post("/logout")
async def log_out(request: Request, wired: Wired) -> Response:
    form = await _form(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:

        def end() -> None:
            with wired.engine.begin() as conn:
                key = wired.session_key(conn)
                resumed = sessions.resume(conn, cookie, key, wired.now())
                if resumed is None:
                    return
                if not secrets.compare_digest(form.get("csrf_token", "").encode(), resumed[1].encode()):
                    raise ForbiddenError("the CSRF token is missing or wrong: log out from the page's button")
                sessions.end(conn, cookie, key)

        await run_in_threadpool(end)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
