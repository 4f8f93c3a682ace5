"""``/portal``: a customer's user opens a ticket, as the terms let a customer do through the service portal.

The user picks one of its own devices (its serial and contract number fill themselves in), chooses the
priority reading each one in the terms' own words with its service window and deadlines, and says what is
wrong. ``POST /portal/tickets`` (JSON, with the session's CSRF token like every change) opens it as that
user, through the same ``open_by_hand`` the engineers' API uses, and answers with the ticket's page; the
board then shows the customer its own tickets and their deadlines. Only a customer's users open tickets
here: the provider's staff open them through the API or the CLI.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from collector import tickets
from collector.api.auth import PageReader, scope
from collector.api.deps import Wired
from collector.api.pages.board import visitor
from collector.errors import ForbiddenError, NotFoundError
from collector.people import Person, Scope
from collector.sla.terms import SlaPolicy
from collector.store.schema import devices

router = APIRouter(include_in_schema=False)

#: Each priority in the words of the HEZO+ terms (docs/service-terms.md, "Priorities").
MEANINGS = {
    "critical": "no access to the device, the device does not work",
    "high": "device unstable, a problem is suspected, it still works, no security breach",
    "low": "not a fault: configuration change, how something works, consultation",
}


class PortalTicket(BaseModel):
    """What a customer sends: the device (``site/agent/device``), the priority and what is wrong."""

    model_config = ConfigDict(extra="forbid")

    device: str = Field(
        min_length=5, max_length=200, pattern=r"^[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*){2}$"
    )
    priority: Literal["critical", "high", "low"]
    summary: str = Field(min_length=1, max_length=10000)


def customer_user(who: PageReader) -> Person:
    """A customer's user (checked before any body is read); the staff get a 403 saying where they open
    tickets."""
    if who.customer is None:
        raise ForbiddenError(
            "the portal is for a customer's users; staff open tickets with the API or the CLI"
        )
    return who


CustomerUser = Annotated[Person, Depends(customer_user)]


def priorities(policy: SlaPolicy) -> list[dict[str, Any]]:
    """Each priority: its meaning in the terms' words, and the deadlines this collector keeps for it."""
    found = []
    for name, meaning in MEANINGS.items():
        terms = policy.of(name)
        found.append(
            {
                "name": name,
                "meaning": meaning,
                "window": terms.window,
                "response_hours": terms.response_hours,
                "update_hours": terms.update_hours,
                "delivery": None
                if terms.delivery_hours is None
                else (
                    "next business day after confirmation"
                    if terms.delivery == "next-business-day"
                    else f"within {terms.delivery_hours:g} h of confirmation"
                ),
            }
        )
    return found


def _devices(wired: Any, seen: Scope) -> list[dict[str, Any]]:
    with wired.engine.connect() as conn:
        rows = conn.execute(
            select(devices)
            .where(devices.c.retired_at.is_(None), devices.c.site.in_(sorted(seen.sites)))
            .order_by(devices.c.site, devices.c.room, devices.c.device)
        )
        return [dict(row._mapping) for row in rows if seen.has_device(row.site, row.agent, row.device)]


@router.get("/portal", response_class=HTMLResponse)
def portal(request: Request, wired: Wired, who: CustomerUser) -> Response:
    with wired.engine.connect() as conn:
        seen = scope(conn, who)
    assert seen is not None  # a customer's user always has a scope
    context = {
        "devices": _devices(wired, seen),
        "priorities": priorities(wired.sla.policy),
        **visitor(request, who),
    }
    return wired.templates.TemplateResponse(
        request, "portal.html", context, headers={"Cache-Control": "no-store"}
    )


@router.post("/portal/tickets", status_code=201)
def open_from_portal(body: PortalTicket, wired: Wired, who: CustomerUser) -> JSONResponse:
    """Open a ticket on one of the customer's own devices; 404 for a device that is not theirs."""
    site, agent, device = body.device.split("/")
    with wired.engine.begin() as conn:
        seen = scope(conn, who)
        if seen is None or not seen.has_device(site, agent, device):
            raise NotFoundError(f"no device {body.device} among yours")
        number = tickets.open_by_hand(
            conn,
            site=site,
            agent=agent,
            device=device,
            priority=body.priority,
            summary=body.summary,
            by=who.actor,
            now=wired.now(),
            context=wired.sla,
        )
    return JSONResponse({"number": number, "page": f"/tickets/{number}"}, status_code=201)
