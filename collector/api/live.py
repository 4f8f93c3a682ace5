"""``/live``: server-sent events telling an open page that tickets or device states changed.

Each connection reads three indexed maxima once a second (the newest ticket, timeline entry and device
state change: every ticket change adds a timeline entry, every state change a transition) and sends a
``change`` event when they move; the page then fetches just the part it shows. A comment every
``KEEPALIVE`` seconds keeps proxies from closing a quiet stream. At most ``MAX_STREAMS`` streams are open at
once (503 beyond: the page falls back to its reload link), and each ends after ``LIFETIME`` seconds, when
the browser's EventSource reconnects, so a session that ended stops getting events.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import Engine, func, select
from starlette.concurrency import run_in_threadpool

from collector.api.auth import PageReader
from collector.api.deps import Wired
from collector.errors import UnavailableError
from collector.store.schema import device_transitions, ticket_entries, tickets

router = APIRouter(include_in_schema=False)

MAX_STREAMS = 64
INTERVAL = 1.0
KEEPALIVE = 15.0
LIFETIME = 600.0


class Streams:
    """How many ``/live`` streams are open, held below a bound."""

    def __init__(self, bound: int = MAX_STREAMS) -> None:
        self.bound = bound
        self.open = 0
        self._lock = threading.Lock()

    def take(self) -> None:
        with self._lock:
            if self.open >= self.bound:
                raise UnavailableError(f"{self.bound} live pages are open already; reload the page instead")
            self.open += 1

    def give_back(self) -> None:
        with self._lock:
            self.open -= 1


def streams(request: Request) -> Streams:
    state = request.app.state
    if not hasattr(state, "live_streams"):
        state.live_streams = Streams()
    found: Streams = state.live_streams
    return found


def version(engine: Engine) -> dict[str, int]:
    """What a change moves: the newest ticket, timeline entry and device state change (ids)."""
    query = select(
        select(func.coalesce(func.max(tickets.c.id), 0)).scalar_subquery(),
        select(func.coalesce(func.max(ticket_entries.c.id), 0)).scalar_subquery(),
        select(func.coalesce(func.max(device_transitions.c.id), 0)).scalar_subquery(),
    )
    with engine.connect() as conn:
        row = conn.execute(query).one()
    return {"tickets": int(row[0]), "entries": int(row[1]), "states": int(row[2])}


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


async def _changes(request: Request, engine: Engine, open_streams: Streams) -> AsyncIterator[str]:
    try:
        last = await run_in_threadpool(version, engine)
        changes = 0
        # The events carry this stream's own count, not the store's ids: those would tell a customer's user
        # how many tickets others have.
        yield "retry: 3000\n" + _event("hello", {"changes": changes})
        started = quiet = time.monotonic()
        while time.monotonic() - started < LIFETIME:
            await asyncio.sleep(INTERVAL)
            if await request.is_disconnected():
                return
            now = await run_in_threadpool(version, engine)
            if now != last:
                last = now
                quiet = time.monotonic()
                changes += 1
                yield _event("change", {"changes": changes})
            elif time.monotonic() - quiet >= KEEPALIVE:
                quiet = time.monotonic()
                yield ": still here\n\n"
    finally:
        open_streams.give_back()


@router.get("/live")
def live(request: Request, wired: Wired, who: PageReader) -> StreamingResponse:
    """The stream of change events for the pages (``text/event-stream``)."""
    open_streams = streams(request)
    open_streams.take()
    return StreamingResponse(
        _changes(request, wired.engine, open_streams),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
