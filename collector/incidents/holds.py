"""What holds a ticket back at one evaluation: a silent agent (nothing is known of its devices), a maintenance
window over the site, agent or device, and a device not under an active contract.

Only the agents that are silent are read (offline past ``agent_silent_after``, or online with no message for
``heartbeat_timeout``), not the whole fleet; an agent whose enrolment was revoked is not silent but gone, on
purpose, and holds nothing. The contract registry is read only when a device's hold is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, exists, false, func, or_, select

from collector.config import IncidentsConfig
from collector.registry import contracts, maintenance
from collector.sla.terms import Calendars
from collector.store.schema import agents, enrolments

#: ``(site, agent)``
AgentKey = tuple[str, str]


@dataclass
class Holds:
    """Silent agents, maintenance windows and the contract registry, as they stand at one evaluation."""

    silent: dict[AgentKey, str]  # why each silent agent is silent
    silent_since: dict[AgentKey, datetime]
    stale: set[AgentKey]  # online, but no message for heartbeat_timeout
    windows: list[maintenance.Window]
    registry: contracts.Registry | None = None  # read by the first ``why``

    @classmethod
    def load(cls, conn: Connection, now: datetime, rules: IncidentsConfig) -> Holds:
        silent_after = timedelta(seconds=rules.agent_silent_after)
        heartbeat = rules.heartbeat_timeout
        silent: dict[AgentKey, str] = {}
        since: dict[AgentKey, datetime] = {}
        stale: set[AgentKey] = set()
        for row in conn.execute(_silent_agents(now, silent_after, heartbeat)).all():
            key = (row.site, row.agent)
            changed = row.status_changed_at or row.last_seen
            if not row.online:
                if changed is not None and changed <= now - silent_after:
                    silent[key] = f"offline since {changed.isoformat()}"
                    since[key] = changed
            elif (
                heartbeat is not None
                and row.last_seen is not None
                and row.last_seen <= now - timedelta(seconds=heartbeat)
            ):
                stale.add(key)
                silent[key] = f"no message since {row.last_seen.isoformat()}"
                since[key] = row.last_seen
        return cls(silent, since, stale, maintenance.load(conn))

    def window(
        self, calendars: Calendars, now: datetime, site: str, agent: str | None, device: str | None
    ) -> str | None:
        """The maintenance window over this site, agent (None: the site) and device now, as a reason."""
        found = maintenance.holding(self.windows, calendars, now, site=site, agent=agent, device=device)
        return None if found is None else f"maintenance window {found.name}"

    def why(
        self, conn: Connection, device: Any, now: datetime, calendars: Calendars, rules: IncidentsConfig
    ) -> str | None:
        """Why ``device`` (a ``devices`` row) gets no automatic ticket now, or None."""
        if (device.site, device.agent) in self.stale:
            return "its agent is silent"
        reason = self.window(calendars, now, device.site, device.agent, device.device)
        if reason is not None:
            return reason
        today = calendars[device.site].local(now).date()
        if self.registry is None:
            self.registry = contracts.Registry.load(conn)
        cover = self.registry.coverage(device.contract, device.serial, today, rules.contract_warning_days)
        hold_unregistered = rules.unregistered_contract == "hold"
        if cover.state not in contracts.COVERED and (
            cover.state != contracts.UNREGISTERED or hold_unregistered
        ):
            return cover.warning
        return None


def _silent_agents(now: datetime, silent_after: timedelta, heartbeat: float | None) -> Any:
    """The agents that may be silent now (``load`` decides), leaving out those whose enrolment was revoked."""
    changed = func.coalesce(agents.c.status_changed_at, agents.c.last_seen)
    offline = and_(agents.c.online.is_not(True), changed <= now - silent_after)
    stale = (
        false()
        if heartbeat is None
        else and_(agents.c.online.is_(True), agents.c.last_seen <= now - timedelta(seconds=heartbeat))
    )
    revoked = exists().where(
        enrolments.c.site == agents.c.site,
        enrolments.c.agent == agents.c.agent,
        enrolments.c.revoked_at.is_not(None),
    )
    return select(agents).where(or_(offline, stale), ~revoked)
