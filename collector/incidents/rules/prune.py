"""Device transitions too old for the flapping rule are forgotten, at most once an hour.

Housekeeping of the whole store, not a decision about a site: every collector of a cluster runs it. That is
safe run twice at once: it only deletes rows past a cut-off, writes nothing anyone reads as an event, and a
second collector deleting the same rows finds them gone."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, delete

from collector.incidents.evaluation import Context
from collector.store.schema import device_transitions


class PruneTransitions:
    def __init__(self) -> None:
        self._pruned_at: datetime | None = None

    def apply(self, conn: Connection, context: Context) -> None:
        now = context.now
        if self._pruned_at is not None and now - self._pruned_at < timedelta(hours=1):
            return
        self._pruned_at = now
        keep = timedelta(seconds=context.rules.unstable.flap_window) * 2
        conn.execute(delete(device_transitions).where(device_transitions.c.at < now - keep))
