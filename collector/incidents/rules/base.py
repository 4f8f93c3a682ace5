"""The shape of a rule: one decision of the incident engine, taken at every evaluation in registry order."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import Connection

from collector.incidents.evaluation import Context


class Rule(Protocol):
    """A rule applies itself in one transaction of its own; what it decided goes to ``context.done``.

    A rule that keeps state between evaluations (a cursor, the time it last ran) keeps it on itself: the
    engine makes one instance of each rule and keeps it.
    """

    def apply(self, conn: Connection, context: Context) -> None: ...
