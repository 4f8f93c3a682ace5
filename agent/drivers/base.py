"""What every driver shares: the result of one check and the interface of a configured probe."""

import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from protocol import format_ts
from protocol.bodies import MEDIUM as FACT_MAX


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check of one device: a dead target is a result with ``ok=False``, not an exception.

    ``ok`` says the device answered; ``degraded`` says it answered but a part of it is missing
    (the camera is there, the speakerphone is not). ``metrics`` are numbers sent as telemetry;
    a metric named ``uptime_s`` (seconds since the device or its switch port last started) lets the
    poller see reboots. ``facts`` are short strings published with the state, such as ``firmware``,
    whose change the poller reports as an event. ``inconclusive`` says the check could not tell, because its
    source failed rather than the device (the Logitech Sync cloud unreachable, a switch that does not answer):
    it never makes a device down. ``confirmed`` says a failure was also reported by the target on its own (a
    switch's linkDown trap): two witnesses, so the poller does not re-check it (not sent on the wire).
    """

    driver: str
    target: str
    ok: bool
    detail: str
    ts: datetime = field(default_factory=lambda: datetime.now(UTC))
    duration_ms: float | None = None
    degraded: bool = False
    metrics: dict[str, float] = field(default_factory=dict)
    facts: dict[str, str] = field(default_factory=dict)
    inconclusive: bool = False
    confirmed: bool = False

    def to_wire(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "driver": self.driver,
            "target": self.target,
            "ok": self.ok,
            "detail": self.detail,
            "ts": format_ts(self.ts),
            "duration_ms": None if self.duration_ms is None else round(self.duration_ms, 3),
        }
        if self.degraded:
            doc["degraded"] = True
        if self.inconclusive:
            doc["inconclusive"] = True
        if self.facts:
            # A longer fact would make the collector refuse the whole message (protocol.bodies).
            doc["facts"] = {name: value[:FACT_MAX] for name, value in self.facts.items()}
        if self.metrics:
            # With the state, the figures that decided it (the collector's packet-loss rule reads loss_pct);
            # not a NaN or an infinity, which JSON cannot carry (the whole state would not be sent).
            doc["metrics"] = {
                name: round(value, 3) for name, value in self.metrics.items() if math.isfinite(value)
            }
        return doc


class Probe(Protocol):
    """One configured check of one device."""

    driver: str
    target: str

    async def poll(self) -> CheckResult:
        """Check the device once. Must not raise for a dead or misbehaving device."""
        ...


class TimedResults:
    """For a probe class: ``_result`` makes a result of this probe's check, timed by ``watch``."""

    driver: str
    target: str

    def _result(
        self,
        ok: bool,
        detail: str,
        watch: "Stopwatch",
        *,
        degraded: bool = False,
        metrics: dict[str, float] | None = None,
        facts: dict[str, str] | None = None,
        inconclusive: bool = False,
    ) -> CheckResult:
        return CheckResult(
            self.driver,
            self.target,
            ok,
            detail,
            duration_ms=watch.ms(),
            degraded=degraded,
            metrics=metrics or {},
            facts=facts or {},
            inconclusive=inconclusive,
        )


class Stopwatch:
    """Milliseconds since construction, on the monotonic clock."""

    def __init__(self) -> None:
        self._start = time.perf_counter()

    def ms(self) -> float:
        return (time.perf_counter() - self._start) * 1000.0
