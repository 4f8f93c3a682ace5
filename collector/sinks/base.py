"""What every sink shares: the notice it is handed, the outcome it answers, and its interface.

A sink turns one ticket event (a ``Notice``) into a message somewhere else (an e-mail, a webhook call, a
comment in a service desk) and says how it went: ``Delivered``, ``Retry`` (a temporary failure: the
dispatcher tries again later, with backoff) or ``Failed`` (permanent: the delivery goes to dead-letter with
the reason). A sink never raises for a far side that is down or refuses: that is an outcome, not an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Link:
    """The ticket's counterpart at this sink, once one exists (an RT ticket id, a ServiceNow sys_id)."""

    remote_id: str
    remote_url: str | None = None
    cursor: str | None = None


@dataclass(frozen=True)
class Notice:
    """One ticket event for one sink.

    ``ticket`` is the ticket as the API shows it (number, priority, status, site, device, serial, contract,
    customer, deadlines, ...); ``entry`` the timeline entry of the event (at, kind, text, by). ``key`` is the
    idempotency key of this (ticket, event, sink): the same at every attempt, so a far side that keeps keys
    sees a retry as the same message. ``thread`` is the key of the ticket's first message, for threading.
    """

    event: str
    ticket: dict[str, Any]
    entry: dict[str, Any]
    key: str
    thread: str
    url: str
    timezone: str = "UTC"
    link: Link | None = None
    attempt: int = 1
    #: The one address this notice goes to instead of the sink's own recipients (a customer contact).
    recipient: str | None = None

    @property
    def number(self) -> str:
        return str(self.ticket["number"])

    def local(self, moment: datetime | None) -> str:
        """A moment in the site's time zone, as people there read it (``2026-12-04 15:30 CET``)."""
        if moment is None:
            return "-"
        return moment.astimezone(ZoneInfo(self.timezone)).strftime("%Y-%m-%d %H:%M %Z")

    @property
    def title(self) -> str:
        """``HZ-000042 Critical: rally-bar at hq (opened)``: number, priority, device and site, event."""
        ticket = self.ticket
        what = ticket.get("device") or "site"
        return (
            f"{self.number} {str(ticket['priority']).capitalize()}: {what} at {ticket['site']} ({self.event})"
        )


@dataclass(frozen=True)
class Delivered:
    """The far side has it. ``remote_ref`` names the message there; ``link`` is set when this delivery
    created the ticket's counterpart (kept for later events and for following the desk back)."""

    remote_ref: str | None = None
    link: Link | None = None


@dataclass(frozen=True)
class Retry:
    """A temporary failure (unreachable, 5xx, 429): try again, not before ``after`` seconds if given."""

    reason: str
    after: float | None = None


@dataclass(frozen=True)
class Failed:
    """A permanent failure (refused, 4xx): retrying would not help; the delivery goes to dead-letter."""

    reason: str


Outcome = Delivered | Retry | Failed


@dataclass(frozen=True)
class DeskChange:
    """What a desk says of a linked ticket since ``cursor``: new comments, and whether it is resolved."""

    comments: list[tuple[str, str]] = field(default_factory=list)  # (author, text)
    resolved_by: str | None = None  # who resolved it there, when it is resolved
    cursor: str | None = None
    status: str | None = None


class Sink(Protocol):
    """Delivers notices; ``close`` releases its connections."""

    def send(self, notice: Notice) -> Outcome: ...

    def close(self) -> None: ...


class Desk(Sink, Protocol):
    """A sink that is a service desk engineers work in: hezo follows its tickets back (``changes``)."""

    def changes(self, link: Link) -> DeskChange | Retry: ...


def http_outcome(status: int, body: str, retry_after: str | None = None) -> Retry | Failed:
    """How an HTTP answer that is not a success counts: 408, 425, 429 and 5xx are temporary (with the far
    side's ``Retry-After`` when it gives one in seconds), any other 4xx permanent."""
    reason = f"HTTP {status}: {' '.join(body.split())[:300]}"
    if status in (408, 425, 429) or status >= 500:
        after = float(retry_after) if retry_after and retry_after.strip().isdigit() else None
        return Retry(reason, after)
    return Failed(reason)
