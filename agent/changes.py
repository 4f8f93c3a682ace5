"""Events a device's own figures reveal between two polls: it restarted, or its firmware changed.

A driver reports what it sees (``uptime_s`` as a metric, ``firmware`` as a fact); this module remembers the
previous round per check and turns a change into an event body, so every driver gets reboot and firmware
detection without code of its own.
"""

from dataclasses import dataclass, field
from typing import Any

from agent.drivers.base import CheckResult

#: An uptime may read a little lower than the last one without a restart (clock steps, rounding); a
#: restart resets it to near zero, far below.
UPTIME_SLACK_S = 5.0


@dataclass
class ChangeWatch:
    """What one device's checks said last time, keyed by (driver, target)."""

    device: str
    _uptime: dict[tuple[str, str], float] = field(default_factory=dict)
    _firmware: dict[tuple[str, str], str] = field(default_factory=dict)

    def events(self, results: list[CheckResult]) -> list[dict[str, Any]]:
        """The event bodies this round's results reveal, compared with the last round's."""
        found: list[dict[str, Any]] = []
        for result in results:
            if not result.ok:
                continue  # a dead target says nothing about its uptime or firmware
            key = (result.driver, result.target)
            uptime = result.metrics.get("uptime_s")
            if uptime is not None:
                before = self._uptime.get(key)
                if before is not None and uptime + UPTIME_SLACK_S < before:
                    found.append(
                        self._event(
                            "reboot",
                            result,
                            f"{result.target} restarted: uptime {before:.0f} s -> {uptime:.0f} s",
                        )
                    )
                self._uptime[key] = uptime
            firmware = result.facts.get("firmware")
            if firmware:
                before_fw = self._firmware.get(key)
                if before_fw is not None and firmware != before_fw:
                    found.append(
                        self._event(
                            "firmware-changed", result, f"{result.target} firmware {before_fw} -> {firmware}"
                        )
                    )
                self._firmware[key] = firmware
        return found

    def _event(self, kind: str, result: CheckResult, reason: str) -> dict[str, Any]:
        return {"type": kind, "device": self.device, "reason": reason, "checks": [result.to_wire()]}
