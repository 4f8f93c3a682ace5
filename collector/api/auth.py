"""Who is asking, and may they: authentication and authorization as FastAPI dependencies.

A request is someone's when it carries an API token (``Authorization: Bearer hezo_...``) or the web page's
session cookie (``hezo_session``, from ``/login``). A request with the cookie that would change something
(any method but GET, HEAD, OPTIONS) must also carry the session's CSRF token in ``X-CSRF-Token``: the page
sends it with its own fetch() calls, and no other site can read it. A request with neither is a 401.

A route says what it needs by the type of one parameter (docs/security.md has the table):

    who: Reader     viewer and above, a customer's users too; the route shows them only their ``scope``
    who: Staff      viewer and above, the provider's staff only (a customer's user gets 403)
    who: Engineer   engineer and above
    who: Admin      admin

A route whose URL names something a customer may own also takes ``dependencies=[Depends(ticket_visible)]``
(or ``contract_visible``, ``window_visible``, ``device_visible``): to a customer's user, one outside its
scope answers 404 before any role is checked, exactly as one that does not exist, so no answer tells that it
exists. The pages take
``PageReader`` or ``PageStaff``, which send a browser without a session to ``/login`` instead of a 401.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Connection, select

from collector.api.deps import Wired
from collector.errors import ForbiddenError, NotFoundError, UnauthorizedError
from collector.people import Person, Role, Scope, scope_of
from collector.people import sessions as web_sessions
from collector.people import tokens as api_tokens
from collector.store.schema import contracts, devices, maintenance, tickets

SESSION_COOKIE = "hezo_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

TicketNumber = Annotated[str, Path(min_length=1, max_length=32, description="HZ-000042")]
ContractNumber = Annotated[str, Path(min_length=1, max_length=128)]
WindowName = Annotated[str, Path(min_length=1, max_length=128)]
#: A site, agent or device id in a URL, as the protocol has them (``protocol/ids.py``).
Id = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]


class InvalidTokenError(UnauthorizedError):
    """A token was sent, and it is not (or no longer) good."""

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="hezo", error="invalid_token"'}


class LoginRequiredError(UnauthorizedError):
    """A page asked for without a session: the browser goes to the login form, and back after it."""

    def __init__(self, back_to: str) -> None:
        super().__init__("log in first")
        self.back_to = back_to


def _bearer(request: Request, wired: Wired, header: str) -> Person:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError("send an API token as 'Authorization: Bearer hezo_...'")
    with wired.engine.begin() as conn:
        found = api_tokens.verify(conn, token.strip(), wired.now())
    if found is None:
        raise InvalidTokenError("the token is unknown, revoked or expired, or its user is disabled")
    request.state.via = "token"
    return found


#: How the OpenAPI document names the two ways in; the header and the cookie are read below all the same.
_TOKEN_SCHEME = HTTPBearer(auto_error=False, scheme_name="token", description="an API token: hezo_...")
_SESSION_SCHEME = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    scheme_name="session",
    description="the web page's login (changes also need the X-CSRF-Token header)",
)


def authenticate(
    request: Request,
    wired: Wired,
    _token: Annotated[HTTPAuthorizationCredentials | None, Depends(_TOKEN_SCHEME)],
    _session: Annotated[str | None, Depends(_SESSION_SCHEME)],
) -> Person:
    """The person the request comes from (token or session, CSRF checked for changes); else a 401."""
    header = request.headers.get("authorization")
    if header is not None:
        return _bearer(request, wired, header)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        with wired.engine.begin() as conn:
            resumed = web_sessions.resume(conn, cookie, wired.session_key(conn), wired.now())
        if resumed is not None:
            person, csrf = resumed
            request.state.csrf = csrf
            request.state.via = "session"
            if request.method not in SAFE_METHODS and not hmac.compare_digest(
                request.headers.get(CSRF_HEADER, "").encode(), csrf.encode()
            ):
                raise ForbiddenError(f"the CSRF token is missing or wrong: send it in {CSRF_HEADER}")
            return person
    raise UnauthorizedError("log in, or send an API token (Authorization: Bearer hezo_...)")


def page_visitor(request: Request, wired: Wired) -> Person:
    """``authenticate`` for the HTML pages: without a session the browser is sent to ``/login``."""
    try:
        return authenticate(request, wired, None, None)
    except UnauthorizedError:
        back_to = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequiredError(back_to) from None


Visitor = Annotated[Person, Depends(authenticate)]
PageVisitor = Annotated[Person, Depends(page_visitor)]


def _require(role: Role, *, customers: bool, page: bool = False) -> Any:
    """A dependency that passes ``role`` and above (and, with ``customers``, a customer's users)."""

    def allowed(who: Person) -> Person:
        if who.customer is not None and not customers:
            raise ForbiddenError("this is for the provider's staff, not for a customer's users")
        if not who.may(role):
            raise ForbiddenError(f"this needs the {role} role or above; {who.name} is {who.role}")
        return who

    def check(who: Visitor) -> Person:
        return allowed(who)

    def check_page(who: PageVisitor) -> Person:
        return allowed(who)

    chosen = check_page if page else check
    chosen.__name__ = f"require_{role}{'_or_customer' if customers else ''}{'_page' if page else ''}"
    return Depends(chosen)


Reader = Annotated[Person, _require(Role.VIEWER, customers=True)]
Staff = Annotated[Person, _require(Role.VIEWER, customers=False)]
Engineer = Annotated[Person, _require(Role.ENGINEER, customers=False)]
Admin = Annotated[Person, _require(Role.ADMIN, customers=False)]
PageReader = Annotated[Person, _require(Role.VIEWER, customers=True, page=True)]
PageStaff = Annotated[Person, _require(Role.VIEWER, customers=False, page=True)]


def scope(conn: Connection, who: Person) -> Scope | None:
    """What ``who`` may see: a customer's scope, or None for the provider's staff (everything)."""
    return scope_of(conn, who.customer) if who.customer is not None else None


def ticket_visible(number: TicketNumber, who: Visitor, wired: Wired) -> None:
    """404 for a ticket outside a customer's scope (staff see every ticket)."""
    if who.customer is None:
        return
    with wired.engine.connect() as conn:
        row = conn.execute(
            select(tickets.c.site, tickets.c.agent, tickets.c.device, tickets.c.contract).where(
                tickets.c.number == number
            )
        ).first()
        if row is None or not scope_of(conn, who.customer).has_ticket(dict(row._mapping)):
            raise NotFoundError(f"no ticket numbered {number!r}")


def contract_visible(number: ContractNumber, who: Visitor, wired: Wired) -> None:
    """404 for a contract that is not the customer's own."""
    if who.customer is None:
        return
    with wired.engine.connect() as conn:
        owner = conn.execute(select(contracts.c.customer).where(contracts.c.number == number)).first()
    if owner is None or owner.customer != who.customer:
        raise NotFoundError(f"no contract numbered {number!r}")


def window_visible(name: WindowName, who: Visitor, wired: Wired) -> None:
    """404 for a maintenance window outside a customer's sites and devices."""
    if who.customer is None:
        return
    with wired.engine.connect() as conn:
        row = conn.execute(
            select(maintenance.c.site, maintenance.c.agent, maintenance.c.device).where(
                maintenance.c.name == name
            )
        ).first()
        if row is None or not scope_of(conn, who.customer).has_window(dict(row._mapping)):
            raise NotFoundError(f"no maintenance window named {name!r}")


def device_visible(site: Id, agent: Id, device: Id, who: Visitor, wired: Wired) -> None:
    """404 for a device the store does not know (it keeps retired ones), or one outside a customer's scope."""
    with wired.engine.connect() as conn:
        known = conn.execute(
            select(devices.c.device).where(
                devices.c.site == site, devices.c.agent == agent, devices.c.device == device
            )
        ).first()
        if known is None or (
            who.customer is not None and not scope_of(conn, who.customer).has_device(site, agent, device)
        ):
            raise NotFoundError(f"no device {site}/{agent}/{device}")
