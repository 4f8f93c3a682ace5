"""The incident engine: every ticket decision, taken at each evaluation (docs/collector.md, the ticket rule).

Ingest only records what agents say; this engine, run by the same single writer thread, then applies each
rule of ``rules.RULES`` in order, each in one transaction of its own: tickets of retired devices are closed,
recovered devices' tickets recovered and later closed, silent sites ticketed, devices down past the confirm
window ticketed Critical, unstable ones High, device events noted, and every deadline kept up to date.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from sqlalchemy import Engine

from collector.config import IncidentsConfig
from collector.incidents.evaluation import Context, Evaluation
from collector.incidents.rules import RULES, Rule
from collector.metrics import Metrics
from collector.sla.terms import SlaContext, SlaPolicy
from collector.store.database import utcnow


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
    ) -> None:
        """``owns(site)``: whether this collector decides ``site`` now (``collector/cluster``); by default
        every site is its own."""
        self._engine = engine
        self._owns = owns
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
        )
        for rule in self.rules:
            # Not holding SQLite's write lock from the start (``write_transaction``): a rule reads before it
            # writes, if it writes at all, and ingest in another process may store meanwhile.
            with self._engine.begin() as conn:
                rule.apply(conn, context)
            context.committed()
        self.last = context.done
        self.evaluations += 1
        if self._metrics is not None:
            self._metrics.evaluations.inc()
        return context.done.opened
