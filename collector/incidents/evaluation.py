"""What every rule sees at one evaluation, and what the evaluation did.

``Context`` carries the moment, the settings, the SLA terms, the holds (loaded once per evaluation, on first
use) and the record of what was done; it opens tickets the same way for every rule (``open``), so a rule says
only what is wrong and why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from collector import tickets
from collector.config import IncidentsConfig
from collector.incidents.holds import Holds
from collector.metrics import Metrics
from collector.sla.terms import SlaContext, TicketTimes, deadlines

log = logging.getLogger(__name__)

#: A device's key: ``(site, agent, device)``; device ids are unique per agent only.
DeviceKey = tuple[str, str, str]


@dataclass
class Evaluation:
    """What one evaluation did, by ticket number."""

    opened: list[str] = field(default_factory=list)
    reopened: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    #: Devices confirmed down but held back, with why: ``(site, agent, device) -> reason``.
    held: dict[DeviceKey, str] = field(default_factory=dict)
    #: Deadlines newly missed: ``(ticket number, deadline)``.
    breached: list[tuple[str, str]] = field(default_factory=list)
    warned: list[str] = field(default_factory=list)
    #: How many devices the evaluation looked at: those due in the incident queue, never the whole fleet.
    looked_at: int = 0
    #: More devices may be due than one evaluation takes (it took as many as it may): evaluate again soon.
    more: bool = False
    #: How many active tickets the SLA rule read: those whose SLA state may change now (all at a sweep).
    sla_read: int = 0


class Context:
    """One evaluation, as the rules see it; made by the engine, one per ``evaluate()``."""

    def __init__(
        self,
        *,
        now: datetime,
        rules: IncidentsConfig,
        sla: SlaContext,
        metrics: Metrics | None,
        on_ticket_opened: Callable[[str], None] | None,
        owns: Callable[[str], bool] | None = None,
        lagging: bool = False,
    ) -> None:
        self.now = now
        #: Ingest is behind (``Writer.backlogged``): what the store says of a device may be older than a
        #: message still queued, so a confirmation may wait a little (``rules/device_down.py``).
        self.lagging = lagging
        #: Whether this collector decides a site's tickets now; another collector decides the rest.
        self.owns: Callable[[str], bool] = owns if owns is not None else _every_site
        self.rules = rules
        self.sla = sla
        self.done = Evaluation()
        self._metrics = metrics
        self._on_ticket_opened = on_ticket_opened
        self._holds: Holds | None = None
        self._after_commit: list[Callable[[], None]] = []
        #: The devices due at this evaluation (``devices`` rows, with ``agent_online``): all a device rule
        #: looks at. The engine picks them (``IncidentEngine.due``).
        self.devices: list[Any] = []
        #: When each device needs looking at again (the earliest any rule asked for); none: not until it
        #: changes.
        self.wakes: dict[DeviceKey, datetime] = {}

    def wake(self, key: DeviceKey, at: datetime) -> None:
        """Look at device ``key`` again at ``at`` (at the next evaluation, if ``at`` is now or past)."""
        known = self.wakes.get(key)
        if known is None or at < known:
            self.wakes[key] = at

    def holds(self, conn: Connection) -> Holds:
        """What holds tickets back now (silent agents, maintenance windows, contracts), read once."""
        if self._holds is None:
            self._holds = Holds.load(conn, self.now, self.rules)
        return self._holds

    def held(self, conn: Connection, device: Any) -> str | None:
        """Why ``device`` (a ``devices`` row) gets no automatic ticket now, or None; kept in ``done.held``."""
        key = (device.site, device.agent, device.device)
        reason = self.holds(conn).why(conn, device, self.now, self.sla.calendars, self.rules)
        if reason is not None:
            self.done.held[key] = reason
            self.wake(key, self.now)  # a hold ends without the device changing: look again next time
        return reason

    def open(
        self,
        conn: Connection,
        subject: tickets.Subject,
        *,
        priority: str,
        cause: str,
        evidence: Any,
        text: str,
        summary: str | None = None,
    ) -> str | None:
        """Open a ticket due on the site's calendar, counted and noted in ``done``; its number, or None if
        the subject already has an active ticket of ``cause`` (another collector opened it first: the unique
        index keeps one, and this evaluation goes on)."""
        opening = tickets.Opening(
            subject,
            priority=priority,
            cause=cause,
            response_due=self.now,  # set by ``open_many`` on the site's calendar
            evidence=evidence,
            text=text,
            summary=summary,
        )
        [number] = self.open_many(conn, [opening])
        return number

    def open_many(self, conn: Connection, openings: list[tickets.Opening]) -> list[str | None]:
        """Open many tickets at once (``tickets.open_tickets``), each due on its site's calendar; their
        numbers (None: its device already had one, opened by another writer), counted and noted in ``done``.
        ``response_due`` of each opening is set here."""
        dated = []
        for opening in openings:
            times = TicketTimes(opening.priority, "open", self.now)
            calendar = self.sla.calendars[opening.subject.site]
            dated.append(
                replace(opening, response_due=deadlines(self.sla.policy, calendar, times).response_due)
            )
        numbers = tickets.open_tickets(conn, dated, opened_at=self.now)
        for opening, number in zip(dated, numbers, strict=True):
            if number is None:
                continue
            self.done.opened.append(number)
            if self._metrics is not None:
                self._metrics.tickets_opened.labels(priority=opening.priority).inc()
        return numbers

    def ask_for_evidence(self, number: str) -> None:
        """Once the transaction that opened ticket ``number`` is committed, hand it to ``on_ticket_opened``
        (automatic evidence: collector/remote/evidence.py)."""
        hook = self._on_ticket_opened
        if hook is None:
            return

        def ask() -> None:
            try:
                hook(number)
            except Exception:
                log.exception("on_ticket_opened failed for ticket %s", number)

        self._after_commit.append(ask)

    def committed(self) -> None:
        """The rule's transaction is committed: run what waited for it."""
        waiting, self._after_commit = self._after_commit, []
        for call in waiting:
            call()

    def publish_sla(self, conn: Connection) -> None:
        """Set the SLA gauges, when there are metrics."""
        if self._metrics is not None:
            self._metrics.publish_sla(conn)


def _every_site(_site: str) -> bool:
    return True
