"""What the routes need, made once per app and handed to each route by FastAPI's dependency injection.

``create_app`` puts one ``Wiring`` on ``app.state``; a route takes it as a parameter typed ``Wired``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from prometheus_client import CollectorRegistry
from sqlalchemy import Connection, Engine

from collector.config import IncidentsConfig, WebConfig
from collector.errors import UnavailableError
from collector.people import sessions
from collector.remote.commander import Commander
from collector.remote.uploads import Uploads
from collector.sla.terms import SlaContext


@dataclass
class Wiring:
    """The store, the terms, the clock and the services one web app serves."""

    engine: Engine
    sla: SlaContext
    rules: IncidentsConfig
    now: Callable[[], datetime]
    templates: Jinja2Templates
    registry: CollectorRegistry
    fleet_registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    health: Callable[[], str | None] | None = None
    commander: Commander | None = None
    uploads: Uploads | None = None
    web: WebConfig = field(default_factory=WebConfig)
    _session_key: bytes | None = None

    def session_key(self, conn: Connection) -> bytes:
        """The key session cookies are signed with (from the store, read once)."""
        if self._session_key is None:
            self._session_key = sessions.signing_key(conn, self.now())
        return self._session_key

    def today_of(self, site: str) -> date:
        """Today's date on ``site``'s clock."""
        return self.sla.calendars[site].local(self.now()).date()

    def remote(self) -> Commander:
        """The commander of remote diagnostics; ``UnavailableError`` when this app has none."""
        if self.commander is None:
            raise UnavailableError("remote diagnostics are not served here")
        return self.commander


def wiring(request: Request) -> Wiring:
    found: Wiring = request.app.state.wiring
    return found


Wired = Annotated[Wiring, Depends(wiring)]
