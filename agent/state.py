"""Device state from check results: up, degraded, down, and when it changed.

The scheduler re-checks a failed check before handing results here, so one lost packet or one USB
re-enumeration does not make a device ``down``. A transition is logged once each way.
"""

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agent.drivers.base import CheckResult
from protocol import format_ts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Transition:
    device: str
    before: str
    after: str
    reason: str


def judge(results: list[CheckResult]) -> tuple[str, str]:
    """What the results add up to, and why: a failed check makes ``down``, a degraded one ``degraded``.

    Inconclusive results (the check's source failed, not the device) are left out; when nothing else is
    left, the state is ``unknown``: a cloud outage says nothing about the devices, and opens no ticket.
    """
    unsure = [r for r in results if r.inconclusive]
    results = [r for r in results if not r.inconclusive]
    if unsure and not results:
        return "unknown", "; ".join(f"{r.driver} {r.target}: cannot tell: {r.detail}" for r in unsure)
    failed = [r for r in results if not r.ok]
    if failed:
        return "down", "; ".join(f"{r.driver} {r.target}: {r.detail}" for r in failed)
    degraded = [r for r in results if r.degraded]
    if degraded:
        return "degraded", "; ".join(f"{r.driver} {r.target}: {r.detail}" for r in degraded)
    return "up", "all checks passed"


@dataclass
class DeviceState:
    """The current state of one device, as published on its state topic."""

    device: str
    state: str = "unknown"
    since: datetime = field(default_factory=lambda: datetime.now(UTC))
    reason: str = "not checked yet"
    checks: list[CheckResult] = field(default_factory=list)

    def update(self, results: list[CheckResult], now: datetime | None = None) -> Transition | None:
        """Take a round of results; return the transition if the state changed."""
        state, reason = judge(results)
        self.checks = results
        self.reason = reason
        if state == self.state:
            return None
        before = self.state
        self.state = state
        self.since = now or datetime.now(UTC)
        if state == "up":
            log.info("device %s is up (was %s)", self.device, before)
        else:
            log.info("device %s is %s: %s", self.device, state, reason)
        return Transition(self.device, before, state, reason)

    def to_wire(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "state": self.state,
            "since": format_ts(self.since),
            "reason": self.reason,
            "checks": [r.to_wire() for r in self.checks],
        }
