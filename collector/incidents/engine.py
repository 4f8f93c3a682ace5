"""The incident engine: every ticket decision, taken at each evaluation (docs/collector.md, the ticket rule).

Ingest only records what agents say; this engine, run by the same single writer thread, then applies each
rule of ``rules.RULES`` in order, each in one transaction of its own: tickets of retired devices are closed,
recovered devices' tickets recovered and later closed, silent sites ticketed, devices down past the confirm
window ticketed Critical, unstable ones High, device events noted, and every deadline kept up to date.

An evaluation never reads the whole fleet: the device rules look only at the devices due in the incident
queue (collector/store/incident_queue.py): those ingest touched since, and those whose timer (a confirm
window, degraded-for, a hold) falls due now. Each rule says when it wants a device again; the engine keeps
the earliest and forgets a device nobody waits for. At most ``DEVICES_PER_EVALUATION`` devices are looked at
per evaluation, so an evaluation holds the writer thread for about as long as one batch of ingest; the rest
wait for the next one, longest waiting first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, select

from collector.config import IncidentsConfig
from collector.incidents.evaluation import Context, Evaluation
from collector.incidents.rules import RULES, Rule
from collector.metrics import Metrics
from collector.sla.terms import SlaContext, SlaPolicy
from collector.store import incident_queue
from collector.store.database import among, utcnow
from collector.store.schema import agents, devices

#: The most devices one evaluation looks at (the rest are looked at next time, longest waiting first).
DEVICES_PER_EVALUATION = 2000
#: Keys per ``IN`` list when reading the devices due.
_KEYS_PER_QUERY = 400


class IncidentEngine:
    """Evaluates the ticket rules over the store; ``now`` is injectable so tests control time."""

    def __init__(
        self,
        engine: Engine,
        *,
        confirm_window: float,
        critical_response_hours: float | None = None,
        reopen_window: float = 86400.0,
        metrics: Metrics | None = None,
        now: Callable[[], datetime] = utcnow,
        on_ticket_opened: Callable[[str], None] | None = None,
        rules: IncidentsConfig | None = None,
        context: SlaContext | None = None,
        owns: Callable[[str], bool] | None = None,
        share: Callable[[], tuple[int, frozenset[int]]] | None = None,
        lagging: Callable[[], bool] | None = None,
    ) -> None:
        """``owns(site)``: whether this collector decides ``site`` now (``collector/cluster``); by default
        every site is its own. ``share()``: (N, the partitions among N it decides now), so that it reads only
        those sites' devices. ``lagging()``: whether ingest is behind the agents now (by default never)."""
        self._engine = engine
        self._owns = owns
        self._share = share
        self._lagging = lagging
        self._on_ticket_opened = on_ticket_opened
        self._metrics = metrics
        self._now = now
        settings = rules if rules is not None else IncidentsConfig(confirm_window=confirm_window)
        self.settings = settings.model_copy(
            update={"confirm_window": confirm_window, "reopen_window": reopen_window}
        )
        context = context if context is not None else SlaContext.default()
        if critical_response_hours is not None:
            critical = context.policy.of("critical")
            policy = SlaPolicy(
                {
                    **context.policy.priorities,
                    "critical": replace(critical, response_hours=critical_response_hours),
                },
                context.policy.warn_before,
                context.policy.return_days,
            )
            context = SlaContext(policy, context.calendars)
        self.context = context
        self.rules: list[Rule] = [rule() for rule in RULES]
        self.last = Evaluation()
        #: Evaluations completed since the engine was made: what a test counts to see that nothing happened.
        self.evaluations = 0

    def evaluate(self) -> list[str]:
        """Take every ticket decision due now; return the numbers of the tickets opened (``last`` has all)."""
        context = Context(
            now=self._now(),
            rules=self.settings,
            sla=self.context,
            metrics=self._metrics,
            on_ticket_opened=self._on_ticket_opened,
            owns=self._owns,
            lagging=self._lagging is not None and self._lagging(),
        )
        with self._engine.begin() as conn:
            queued = self.due(conn, context.now)
            context.devices = _device_rows(conn, [item.key for item in queued])
        context.done.looked_at = len(context.devices)
        context.done.more = len(queued) >= DEVICES_PER_EVALUATION
        for rule in self.rules:
            # Not holding SQLite's write lock from the start (``write_transaction``): a rule reads before it
            # writes, if it writes at all, and ingest in another process may store meanwhile.
            with self._engine.begin() as conn:
                rule.apply(conn, context)
            context.committed()
        with self._engine.begin() as conn:
            incident_queue.settle(conn, queued, context.wakes)
        self.last = context.done
        self.evaluations += 1
        if self._metrics is not None:
            self._metrics.evaluations.inc()
        return context.done.opened

    def due(self, conn: Connection, now: datetime) -> list[incident_queue.Queued]:
        """The devices this evaluation looks at: the one place that chooses them. With several collectors,
        only those of the sites this one owns, read by partition (``share``, so the devices other collectors
        have yet to look at cannot crowd out its own) and checked by site (``owns``); the others stay queued
        for their owner."""
        share = self._share() if self._share is not None else None
        if share is not None and not share[1]:
            return []  # no partition held now
        queued = incident_queue.due(conn, now, DEVICES_PER_EVALUATION, partitions=share)
        owns = self._owns
        return queued if owns is None else [item for item in queued if owns(item.key[0])]


def _device_rows(conn: Connection, keys: list[incident_queue.DeviceKey]) -> list[Any]:
    """The ``devices`` rows of ``keys`` with ``agent_online``, by key; a device whose agent has no row yet
    (a state before any birth or death) is left out: no rule decides anything about it."""
    same_agent = and_(agents.c.site == devices.c.site, agents.c.agent == devices.c.agent)
    ordered = sorted(keys)
    rows: list[Any] = []
    for start in range(0, len(ordered), _KEYS_PER_QUERY):
        chunk = ordered[start : start + _KEYS_PER_QUERY]
        query = (
            select(devices, agents.c.online.is_(True).label("agent_online"))
            .select_from(devices.join(agents, same_agent))
            .where(among(conn, (devices.c.site, devices.c.agent, devices.c.device), chunk))
            .order_by(devices.c.site, devices.c.agent, devices.c.device)
        )
        rows.extend(conn.execute(query).all())
    return rows
