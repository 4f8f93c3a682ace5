"""The HTML pages: the overview (``/``), remote diagnostics (``/diagnostics``), the ticket board
(``/board``), one ticket's page (``/tickets/{number}``), the fleet (``/fleet``, ``/fleet/{site}``), one
device's page (``/devices/{site}/{agent}/{device}``), the customers' portal (``/portal``) and the registers
(``/contracts``, ``/maintenance``, ``/audit``, ``/outbox``).
Server-rendered from ``templates/``, enhanced by ``static/console.js`` (countdowns, live parts, the buttons
that call the API); no build step."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.templating import Jinja2Templates

from collector.api.pages import board, fleet, overview, portal, registers

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
STATIC = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(include_in_schema=False)
router.include_router(overview.router)
router.include_router(board.router)
router.include_router(fleet.router)
router.include_router(portal.router)
router.include_router(registers.router)


def templates() -> Jinja2Templates:
    """The page templates, with the ``when`` filter they use for UTC times."""
    found = Jinja2Templates(directory=str(TEMPLATES))
    found.env.filters["when"] = overview.utc
    return found
