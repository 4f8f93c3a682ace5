"""The shape of a rule: one decision of the incident engine, taken at every evaluation in registry order."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import Connection

from collector.incidents.evaluation import Context


class Rule(Protocol):
    """A rule applies itself in one transaction of its own; what it decided goes to ``context.done``.

    A rule about devices looks only at ``context.devices`` (the devices due at this evaluation: changed since,
    or with a timer falling due), never at the whole fleet, and asks for a device again with
    ``context.wake(key, at)`` when something about it will fall due without the device changing (a confirm
    window ending); a device no rule asks for leaves the incident queue until it changes. A rule about
    tickets reads them with filtered queries, so its cost follows the open tickets, and acts only on those of
    the sites ``context.owns`` (with several collectors, another one decides the rest); its writes are
    conditional (``tickets.recover`` and the like say whether they happened), so a late writer adds nothing.

    A rule that keeps state between evaluations (a cursor, the time it last ran) keeps it on itself: the
    engine makes one instance of each rule and keeps it.
    """

    def apply(self, conn: Connection, context: Context) -> None: ...
