"""Automatic evidence: when a Critical ticket opens and its agent is online, ask that agent for service tests
and a log bundle for the ticket, so the fault can be confirmed without waiting for an interview."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from collector import tickets
from collector.errors import CollectorError
from collector.remote.commander import Commander
from collector.store.schema import tickets as ticket_table
from protocol import format_ts

log = logging.getLogger(__name__)

#: How many times each service test runs for a ticket's evidence.
DEFAULT_REPEAT = 5


class Evidence:
    """The incident engine's ``on_ticket_opened``: requests evidence through ``commander``."""

    def __init__(self, commander: Commander) -> None:
        self.commander = commander
        self.settings = commander.settings

    def on_ticket_opened(self, number: str) -> None:
        """For a new Critical ticket: request service tests and a log bundle if the agent is online."""
        if not self.commander.enabled or not self.settings.auto_evidence:
            return
        with self.commander.engine.connect() as conn:
            ticket = conn.execute(select(ticket_table).where(ticket_table.c.number == number)).first()
        if ticket is None or ticket.priority != tickets.PRIORITY_CRITICAL:
            return
        since = self.commander.now() - timedelta(hours=self.settings.evidence_since_hours)
        for action, args in (
            ("service-tests", {"repeat": DEFAULT_REPEAT}),
            ("collect-logs", {"since": format_ts(since)}),
        ):
            try:
                self.commander.request(
                    ticket.site,
                    ticket.agent,
                    action,
                    device=ticket.device,
                    args=args,
                    ticket=number,
                    requested_by="auto-evidence",
                )
            except CollectorError as exc:
                log.info("no automatic %s for ticket %s: %s", action, number, exc)
