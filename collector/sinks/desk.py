"""What the service-desk sinks share: what a desk ticket says (its subject, the text it opens with, the
comment each later event adds; plain text, which every desk shows as written), and how a desk ticket made
for a hezo ticket is recognised when a creation is retried.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from collector.sinks.base import Notice

#: How far a desk's clock may be behind hezo's when telling whether a desk ticket was made for this one.
CLOCK_SLACK = timedelta(minutes=10)

#: Deadlines a ticket may carry, in the order people meet them.
_DEADLINES = (
    ("opened_at", "Opened"),
    ("response_due", "Response by"),
    ("update_due", "Update by"),
    ("delivery_due", "Delivery by"),
    ("return_due", "Return by"),
)


def subject(notice: Notice) -> str:
    """``HZ-000042 Critical: rally-bar at hq``: the number first, so a desk's search finds it."""
    ticket = notice.ticket
    what = ticket.get("device") or "site"
    return f"{notice.number} {str(ticket['priority']).capitalize()}: {what} at {ticket['site']}"


def description(notice: Notice) -> str:
    """The ticket as the desk opens with it: the event's text, then the facts, deadlines in the site's
    time zone, and the link to hezo's ticket."""
    ticket = notice.ticket
    where = str(ticket["site"]) + (f", {ticket['room']}" if ticket.get("room") else "")
    device = str(ticket.get("device") or "-") + (f" ({ticket['model']})" if ticket.get("model") else "")
    lines = [
        str(notice.entry["text"]),
        "",
        f"Ticket:      {notice.number} ({ticket.get('status', 'open')})",
        f"Priority:    {str(ticket['priority']).capitalize()}",
        f"Site:        {where}",
        f"Device:      {device}",
        f"Serial:      {ticket.get('serial') or '-'}",
        f"Contract:    {ticket.get('contract') or '-'}",
    ]
    if ticket.get("customer"):
        lines.append(f"Customer:    {ticket['customer']}")
    lines += [
        f"{label + ':':<12} {notice.local(ticket[key])}" for key, label in _DEADLINES if ticket.get(key)
    ]
    lines += ["", notice.url]
    return "\n".join(lines)


def comment(notice: Notice) -> str:
    """A later event as a comment: what happened, who did it, and the link."""
    by = notice.entry.get("by")
    lines = [f"{notice.number}: {notice.event}", "", str(notice.entry["text"])]
    if by and by != "collector":
        lines.append(f"(by {by})")
    lines += ["", notice.url]
    return "\n".join(lines)


def made_for(notice: Notice, title: str, created: datetime | None) -> bool:
    """Whether a desk ticket titled ``title``, created at ``created``, is the counterpart of this notice's
    ticket: it carries the number first and was made after the ticket opened (a number used before, by a
    collector whose store was reset, is someone else's ticket)."""
    if not title.startswith(f"{notice.number} "):
        return False
    opened = notice.ticket.get("opened_at")
    return created is None or not isinstance(opened, datetime) or created >= opened - CLOCK_SLACK
