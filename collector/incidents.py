"""The incident engine: decides when a down device is really down and opens its Critical ticket.

The rule (see docs/collector.md): a device ``down`` for at least ``confirm_window`` seconds, reported by an
agent that is online, with no open ticket for the same cause, gets a Critical ticket whose first response is
due ``critical_response_hours`` later (24x7, so plain addition). A device behind an offline agent gets no
ticket: the agent is gone, so nothing is known about the device.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Row, and_, select
from sqlalchemy.exc import IntegrityError

from collector import tickets
from collector.metrics import Metrics
from collector.store import CAUSE_DEVICE_DOWN, agents, devices, utcnow

log = logging.getLogger(__name__)


class IncidentEngine:
    """Evaluates the ticket rule over the store; ``now`` is injectable so tests control time."""

    def __init__(
        self,
        engine: Engine,
        *,
        confirm_window: float,
        critical_response_hours: float,
        metrics: Metrics | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._engine = engine
        self._confirm = timedelta(seconds=confirm_window)
        self._response = timedelta(hours=critical_response_hours)
        self._metrics = metrics
        self._now = now

    def evaluate(self) -> list[str]:
        """Open the tickets that are due now; return their numbers."""
        now = self._now()
        query = (
            select(devices)
            .join(agents, and_(agents.c.site == devices.c.site, agents.c.agent == devices.c.agent))
            .where(
                devices.c.state == "down",
                devices.c.down_since.is_not(None),
                devices.c.down_since <= now - self._confirm,
                agents.c.online.is_(True),
            )
            .order_by(devices.c.down_since)
        )
        with self._engine.connect() as conn:
            candidates = conn.execute(query).all()
        opened = []
        for device in candidates:
            number = self._open(device, now)
            if number is not None:
                opened.append(number)
        return opened

    def _open(self, device: Row[Any], now: datetime) -> str | None:
        site: str = device.site
        name: str = device.device
        down_since: datetime = device.down_since
        try:
            with self._engine.begin() as conn:
                if tickets.find_open(conn, site, name, CAUSE_DEVICE_DOWN) is not None:
                    return None
                number = tickets.open_ticket(
                    conn,
                    site=site,
                    agent=device.agent,
                    device=name,
                    model=device.model,
                    serial=device.serial,
                    contract=device.contract,
                    room=device.room,
                    priority=tickets.PRIORITY_CRITICAL,
                    cause=CAUSE_DEVICE_DOWN,
                    opened_at=now,
                    response_due=now + self._response,
                    evidence=device.checks,
                    text=_opened_text(device, down_since),
                )
        except IntegrityError:
            return None  # another collector opened it first; the unique index kept it to one
        if self._metrics is not None:
            self._metrics.tickets_opened.labels(priority=tickets.PRIORITY_CRITICAL).inc()
        log.info(
            "ticket %s opened: critical, device %s/%s down since %s",
            number,
            site,
            name,
            down_since.isoformat(),
        )
        return number


def _opened_text(device: Row[Any], down_since: datetime) -> str:
    model = device.model or "device"
    serial = device.serial or "unknown serial"
    room = device.room or "unknown room"
    reason = device.state_reason or "no reason given"
    return (
        f"{model} {device.device} (serial {serial}) in {room} at site {device.site} "
        f"is down since {down_since.isoformat()}: {reason}. Reported by agent {device.agent}."
    )
