"""Agents gone silent: one ticket per site (not one per device: nothing is known of the devices behind a
silent agent), reopened if the silence comes back, recovered once every agent of the site is back."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Connection, select

from collector import tickets
from collector.incidents.evaluation import Context
from collector.store.schema import CAUSE_AGENT_SILENT
from collector.store.schema import tickets as ticket_table

log = logging.getLogger(__name__)


class SilentSites:
    def apply(self, conn: Connection, context: Context) -> None:
        holds = context.holds(conn)
        now = context.now
        by_site: dict[str, list[str]] = {}
        latest: dict[str, datetime] = {}  # per site, when its latest silence started
        for (site, agent), why in sorted(holds.silent.items()):
            if context.owns(site) and holds.window(context.sla.calendars, now, site, agent, None) is None:
                by_site.setdefault(site, []).append(f"{agent} ({why})")
                started = holds.silent_since[(site, agent)]
                latest[site] = max(latest.get(site, started), started)
        for site, silent in by_site.items():
            ticket = tickets.find_open(conn, site, "", "", CAUSE_AGENT_SILENT)
            text = f"Agents silent at site {site}: {', '.join(silent)}. No device tickets meanwhile."
            if ticket is None and _closed_during(conn, site, latest[site]):
                continue  # an engineer closed the incident of this very silence: no new one until it changes
            if ticket is None:
                priority = context.rules.site_priority
                number = context.open(
                    conn,
                    tickets.Subject(site),
                    priority=priority,
                    cause=CAUSE_AGENT_SILENT,
                    evidence={"silent": silent},
                    text=text,
                    summary=f"site {site}: agents silent",
                )
                if number is not None:  # None: another collector opened it first
                    log.info("ticket %s opened: %s, %s", number, priority, text)
            elif ticket.status == "recovered" and tickets.reopen(conn, ticket, now, "silent-again", text):
                context.done.reopened.append(ticket.number)
                log.info("ticket %s reopened: %s", ticket.number, text)
        query = select(ticket_table).where(
            ticket_table.c.cause == CAUSE_AGENT_SILENT, ticket_table.c.status.in_(("open", "responded"))
        )
        for ticket in conn.execute(query).all():
            if ticket.site in by_site or not context.owns(ticket.site):
                continue
            if tickets.recover(conn, ticket.id, now, f"Every agent of site {ticket.site} is back."):
                context.done.recovered.append(ticket.number)
                log.info("ticket %s recovered: every agent of site %s is back", ticket.number, ticket.site)


def _closed_during(conn: Connection, site: str, silence_started: datetime) -> bool:
    """Whether a site incident opened after ``silence_started`` has been closed already."""
    query = select(ticket_table.c.id).where(
        ticket_table.c.site == site,
        ticket_table.c.agent == "",
        ticket_table.c.device == "",
        ticket_table.c.cause == CAUSE_AGENT_SILENT,
        ticket_table.c.status == "closed",
        ticket_table.c.opened_at >= silence_started,
    )
    return conn.execute(query.limit(1)).first() is not None
