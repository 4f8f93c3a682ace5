"""Customer updates at the terms' cadence: while a ticket owes the reporter regular updates (its
``update_due`` runs), a templated update is written to its timeline ``lead_minutes`` before that deadline, as
an ``update`` entry that resets the update clock. A route with ``to_contact`` sends it to the customer's
contact.

Only tickets whose customer has a contact get one (the contract's ``contact``, else the site's). The text
says the ticket's state in plain words and the site's local times; it never holds more than the ticket does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path

from jinja2 import Environment, FileSystemLoader
from sqlalchemy import Engine, or_, select

from collector import tickets
from collector.errors import CollectorError
from collector.sinks.settings import CustomerUpdatesConfig
from collector.sla.terms import SlaContext
from collector.store.database import utcnow
from collector.store.schema import ACTIVE_STATUSES, contracts
from collector.store.schema import tickets as ticket_table

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"

#: What each status means to a customer.
STATES = {
    "open": "We are looking into it.",
    "responded": "An engineer is working on it.",
    "confirmed": "The fault is confirmed; a replacement is being prepared.",
    "shipped": "The replacement is on its way.",
    "delivered": "The replacement has been delivered.",
    "recovered": "The device is working again; we are watching it.",
}

#: The name ``by`` of automatic updates.
BY = "hezo (automatic update)"


class CustomerUpdates:
    """Writes the updates that are due; ``run()`` once per round."""

    def __init__(
        self,
        engine: Engine,
        settings: CustomerUpdatesConfig,
        context: SlaContext,
        site_contacts: Mapping[str, str],
        *,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.context = context
        self.site_contacts = dict(site_contacts)
        self._now = now
        self._template = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=False).get_template(  # noqa: S701 (plain text)
            "customer_update.txt"
        )

    def run(self) -> list[str]:
        """Write every update now due; the numbers of the tickets updated."""
        if not self.settings.enabled:
            return []
        now = self._now()
        lead = timedelta(minutes=self.settings.lead_minutes)
        query = (
            select(ticket_table, contracts.c.contact)
            .outerjoin(contracts, contracts.c.number == ticket_table.c.contract)
            .where(
                ticket_table.c.status.in_(ACTIVE_STATUSES),
                ticket_table.c.update_due.is_not(None),
                ticket_table.c.update_due <= now + lead,
                or_(contracts.c.contact.is_not(None), ticket_table.c.site.in_(list(self.site_contacts))),
            )
            .order_by(ticket_table.c.update_due)
        )
        updated = []
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        for row in rows:
            text = self._text(row, now)
            try:
                with self.engine.begin() as conn:
                    tickets.note(conn, row.number, text, by=BY, now=now, context=self.context, is_update=True)
            except CollectorError as exc:
                log.info("ticket %s: no customer update: %s", row.number, exc)
                continue
            updated.append(row.number)
        return updated

    def _text(self, row: object, now: datetime) -> str:
        ticket = row._mapping  # type: ignore[attr-defined]
        zone = self.context.calendars[ticket["site"]].timezone
        policy = self.context.policy.of(ticket["priority"])
        next_update = now + timedelta(hours=policy.update_hours)

        def local(moment: datetime | None) -> str:
            if moment is None:
                return "-"
            return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")

        what = f"{ticket['model'] or 'device'} {ticket['device']}" if ticket["device"] else "your site"
        return self._template.render(
            ticket=ticket,
            what=what,
            state=STATES.get(ticket["status"], f"Status: {ticket['status']}."),
            next_update=next_update,
            local=local,
        ).strip()
