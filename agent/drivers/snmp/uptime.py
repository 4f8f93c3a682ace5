"""The switch's uptime, with the 32-bit wrap of ``sysUpTime`` told apart from a restart.

``sysUpTime`` is TimeTicks: hundredths of a second in 32 bits, so it goes back to zero after 2^32 ticks,
497.1 days, on a switch that never restarted. Read naively, that wrap is a restart, a ``reboot`` event, and
three of them a High ticket. ``UptimeClock`` keeps the count of wraps and reports an uptime that goes on
growing, deciding each drop of the counter on the evidence it has, strongest first:

1. ``snmpEngineBoots`` (SNMP-FRAMEWORK-MIB) went up: the SNMP engine restarted. A restart, whatever else says.
2. The drop can only be a wrap if the counter could have reached 2^32 since the last reading (last ticks plus
   the time elapsed on this agent's monotonic clock). If so, and the new reading is where the counter would
   be after wrapping (within ``tolerance``), it is a wrap.
3. Otherwise, a second uptime source that did not go back (``snmpEngineTime``, seconds since the engine
   started, which wraps only after 68 years; or HOST-RESOURCES-MIB ``hrSystemUptime``) says it was a wrap
   (the agent may have been suspended, so its own clock missed the time).
4. Anything else is a restart: the uptime starts again from the new reading.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

WRAP_TICKS = 2**32
TICKS_PER_S = 100.0
#: A reading may be this far from where the counter should be (clock rates, the time a request takes).
TOLERANCE_S = 5.0


@dataclass(frozen=True)
class UptimeReading:
    """One poll's uptime figures; ``None`` for what the switch does not have."""

    ticks: int  # sysUpTime
    engine_boots: int | None = None  # snmpEngineBoots
    engine_time: int | None = None  # snmpEngineTime, seconds
    host_ticks: int | None = None  # hrSystemUptime


class UptimeClock:
    """Turns successive readings of one switch into an uptime in seconds that a wrap does not reset."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, tolerance_s: float = TOLERANCE_S) -> None:
        self._clock = clock
        self.tolerance_s = tolerance_s
        self.wraps = 0
        self._last: UptimeReading | None = None
        self._last_at = 0.0
        #: How the last drop of the counter was judged, for the check's detail; None when it did not drop.
        self.note: str | None = None

    def observe(self, reading: UptimeReading) -> float:
        """The uptime in seconds after ``reading``; a restart makes it small again, a wrap does not."""
        now = self._clock()
        last, elapsed = self._last, now - self._last_at
        self.note = None
        if last is not None and reading.ticks + self.tolerance_s * TICKS_PER_S < last.ticks:
            if self._wrapped(last, reading, elapsed):
                self.wraps += 1
            else:
                self.wraps = 0
        self._last, self._last_at = reading, now
        return (reading.ticks + self.wraps * WRAP_TICKS) / TICKS_PER_S

    def _wrapped(self, last: UptimeReading, new: UptimeReading, elapsed: float) -> bool:
        if (
            last.engine_boots is not None
            and new.engine_boots is not None
            and new.engine_boots > last.engine_boots
        ):
            self.note = f"restart: snmpEngineBoots {last.engine_boots} -> {new.engine_boots}"
            return False
        tolerance = self.tolerance_s * TICKS_PER_S
        expected = last.ticks + elapsed * TICKS_PER_S
        if expected + tolerance < WRAP_TICKS:
            self.note = "restart: sysUpTime went back before it could have wrapped"
            return False  # the counter could not have reached 2^32 yet: a restart
        if abs((expected - WRAP_TICKS) - new.ticks) <= tolerance:
            self.note = "sysUpTime wrapped at 2^32 ticks (497 days), as the time since the last poll says"
            return True
        if (
            last.engine_time is not None
            and new.engine_time is not None
            and new.engine_time >= last.engine_time
            and (last.engine_boots is None or new.engine_boots == last.engine_boots)
        ):
            self.note = "sysUpTime wrapped at 2^32 ticks (497 days): snmpEngineTime went on"
            return True
        if last.host_ticks is not None and new.host_ticks is not None and new.host_ticks >= last.host_ticks:
            self.note = "sysUpTime wrapped at 2^32 ticks (497 days): hrSystemUptime went on"
            return True
        self.note = "restart: sysUpTime went back and nothing says it wrapped"
        return False
