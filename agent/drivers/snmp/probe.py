"""The snmp probe: one GET per poll, and a verdict that says ``down`` only for what the switch said.

What it reads, by numeric OID (no MIB is loaded): ``sysUpTime``, ``sysDescr``, ``hrSystemUptime``,
``snmpEngineBoots``/``snmpEngineTime`` (the uptime and the evidence that tells a 497-day wrap from a restart,
``uptime.py``), the port's ``ifAdminStatus``/``ifOperStatus``, and where the switch has them the PoE port's
``pethPsePortDetectionStatus`` and power (``ports.py`` finds the PoE port, once).

Verdict, link first: port administratively down, or its link down -> ``down``; link up and PoE delivering
(or not checked, or not readable on this switch) -> ``up``; link up with a PoE fault, or with no power
delivered -> ``degraded`` (the device runs: the link needs a powered device). Everything that only failed to
read (no answer, SNMPv3 refused, an unknown port, an unreadable value) is **inconclusive**: the check could
not tell, the device's other checks decide, and it never makes a device ``down`` by itself.

A link down that the switch also announced in a trap (``traps.py``) is confirmed by two witnesses: the
result says so (``confirmed``) and the poller does not re-check it.
"""

import time
from collections.abc import Callable
from typing import Any

from agent.drivers.base import CheckResult, Stopwatch, TimedResults
from agent.drivers.snmp.options import SnmpOptions
from agent.drivers.snmp.ports import PoePort, find_interface, find_poe_port, text
from agent.drivers.snmp.session import PysnmpSession, Session, SnmpReadError, Value
from agent.drivers.snmp.traps import Trap, TrapReceiver
from agent.drivers.snmp.uptime import UptimeClock, UptimeReading
from protocol.bodies import MEDIUM as FACT_MAX

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
HR_SYSTEM_UPTIME = "1.3.6.1.2.1.25.1.1.0"
SNMP_ENGINE_ID = "1.3.6.1.6.3.10.2.1.1.0"
SNMP_ENGINE_BOOTS = "1.3.6.1.6.3.10.2.1.2.0"
SNMP_ENGINE_TIME = "1.3.6.1.6.3.10.2.1.3.0"
IF_ADMIN_STATUS = "1.3.6.1.2.1.2.2.1.7"
IF_OPER_STATUS = "1.3.6.1.2.1.2.2.1.8"
PETH_DETECTION_STATUS = "1.3.6.1.2.1.105.1.1.1.6"

IF_STATUS = {
    1: "up",
    2: "down",
    3: "testing",
    4: "unknown",
    5: "dormant",
    6: "notPresent",
    7: "lowerLayerDown",
}
IF_UNKNOWN = 4
POE_STATUS = {1: "disabled", 2: "searching", 3: "deliveringPower", 4: "fault", 5: "test", 6: "otherFault"}
POE_DELIVERING = 3
POE_FAULTS = (4, 6)
#: Boilerplate lines of a multi-line sysDescr that say nothing of the version.
BOILERPLATE = ("copyright", "technical support")


def firmware_of(value: Value) -> str:
    """``sysDescr`` as one line: line breaks and control characters gone, boilerplate lines dropped, and
    cut at a line boundary to fit a fact (128 characters)."""
    raw = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")
    lines = [text(line) for line in raw.replace("\r", "\n").split("\n")]
    kept = [line for line in lines if line and not line.casefold().startswith(BOILERPLATE)] or [
        line for line in lines if line
    ]
    joined = ""
    for line in kept:
        candidate = f"{joined}; {line}" if joined else line
        if len(candidate) > FACT_MAX:
            break
        joined = candidate
    return joined or (kept[0][: FACT_MAX - 3] + "..." if kept else "")


class SnmpProbe(TimedResults):
    driver = "snmp"

    def __init__(
        self,
        options: SnmpOptions,
        session: Session | None = None,
        *,
        traps: TrapReceiver | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.options = options
        self.target = f"snmp://{options.host}:{options.port}/{options.if_name or options.if_index}"
        self.session: Session = session if session is not None else PysnmpSession(options)
        self.traps = traps
        self._clock = clock
        self._if_index = options.if_index
        self._poe: PoePort | None = None
        self._poe_unreadable: str | None = None
        self._poe_known = not options.poe
        self.uptime = UptimeClock(clock)
        self._engine_id: bytes | None = None
        #: The traps about this port that say it went down, by kind: when they came, on ``clock``.
        self._traps: dict[str, float] = {}

    async def poll(self) -> CheckResult:
        watch = Stopwatch()
        try:
            return await self._check(watch)
        except SnmpReadError as exc:
            return self._result(False, str(exc), watch, inconclusive=True)
        except (TypeError, ValueError) as exc:  # a value of the wrong type, e.g. a string for ifOperStatus
            return self._result(False, f"unexpected answer from the switch: {exc}", watch, inconclusive=True)

    def _oids(self, if_index: int) -> list[str]:
        oids = [
            SYS_UPTIME,
            SYS_DESCR,
            HR_SYSTEM_UPTIME,
            SNMP_ENGINE_ID,
            SNMP_ENGINE_BOOTS,
            SNMP_ENGINE_TIME,
            f"{IF_ADMIN_STATUS}.{if_index}",
            f"{IF_OPER_STATUS}.{if_index}",
        ]
        if self._poe is not None:
            oids.append(f"{PETH_DETECTION_STATUS}.{self._poe.index}")
            if self.options.power_oid:
                oids.append(f"{self.options.power_oid}.{self._poe.index}")
        return oids

    async def _port(self) -> int:
        """The port's ifIndex, and its PoE port where the switch has one (both found once)."""
        if self._if_index is None:
            assert self.options.if_name is not None
            self._if_index = (await find_interface(self.session, self.options.if_name)).if_index
        if not self._poe_known:
            found = await find_poe_port(self.session, self.options, self._if_index)
            self._poe, self._poe_unreadable = (found, None) if isinstance(found, PoePort) else (None, found)
            self._poe_known = True
        return self._if_index

    def forget_port(self) -> None:
        """Find the port (by name) and its PoE port again at the next poll: the switch restarted, or the
        port's row went away (ifIndex values may change across a restart)."""
        if self.options.if_name is not None:
            self._if_index = None
        self._poe_known = not self.options.poe
        self._poe = None

    async def _check(self, watch: Stopwatch) -> CheckResult:
        values = await self.session.get(self._oids(await self._port()))
        if values[6] is None or values[7] is None:
            if self.options.if_name is None:
                raise SnmpReadError(f"no port {self.options.port_label()} on the switch")
            self.forget_port()  # its ifIndex may have changed: look the name up again, once
            values = await self.session.get(self._oids(await self._port()))
            if values[6] is None or values[7] is None:
                raise SnmpReadError(f"no port {self.options.port_label()} on the switch")
        if self._poe is not None and values[8] is None:
            self.forget_port()  # the PoE row went away: found again at the next poll; judged on the link now
            self._poe_unreadable = "its PoE row went away"
        return self._judge(values, watch)

    def _facts_and_metrics(
        self, values: list[Value], watch: Stopwatch
    ) -> tuple[dict[str, float], dict[str, str]]:
        uptime, descr, host_uptime, engine_id, boots, engine_time = values[:6]
        metrics: dict[str, float] = {"snmp.duration_ms": watch.ms()}
        facts: dict[str, str] = {}
        if isinstance(uptime, int):
            reading = UptimeReading(
                uptime,
                boots if isinstance(boots, int) else None,
                engine_time if isinstance(engine_time, int) else None,
                host_uptime if isinstance(host_uptime, int) else None,
            )
            metrics["uptime_s"] = self.uptime.observe(reading)
            if self.uptime.note and self.uptime.note.startswith("restart"):
                self.forget_port()  # ifIndex values and PoE rows may have changed with the restart
        if descr is not None:
            firmware = firmware_of(descr)
            if firmware:
                facts["firmware"] = firmware
        if isinstance(engine_id, bytes) and engine_id != self._engine_id:
            self._engine_id = engine_id
            if self.traps is not None:
                self.traps.sender_engine(self.options, engine_id)
        if self._poe is not None:
            facts["poe_port"] = f"{self._poe.index} ({self._poe.how})"[:FACT_MAX]
        elif self.options.poe and self._poe_unreadable:
            facts["poe_port"] = f"not readable: {self._poe_unreadable}"[:FACT_MAX]
        return metrics, facts

    def _judge(self, values: list[Value], watch: Stopwatch) -> CheckResult:
        options = self.options
        metrics, facts = self._facts_and_metrics(values, watch)
        admin, oper = _integer(values[6], "ifAdminStatus"), _integer(values[7], "ifOperStatus")
        port = options.port_label()
        poe_status: int | None = None
        poe_text = ""
        if self._poe is not None and values[8] is not None:
            poe_status = _integer(values[8], "pethPsePortDetectionStatus")
            poe_text = f", PoE {POE_STATUS.get(poe_status, str(poe_status))}"
            power = values[9] if options.power_oid and len(values) > 9 else None
            if isinstance(power, int):
                metrics["power_mw"] = float(power)
        oper_name = IF_STATUS.get(oper, str(oper))
        state = f"port {port} link {oper_name}{poe_text}"
        if admin != 1:
            admin_name = IF_STATUS.get(admin, str(admin))
            return self._result(
                False, f"{state}: port administratively {admin_name}", watch, metrics=metrics, facts=facts
            )
        if oper == IF_UNKNOWN:
            return self._result(
                False,
                f"{state}: the switch does not know the link state",
                watch,
                metrics=metrics,
                facts=facts,
                inconclusive=True,
            )
        if oper != 1:
            trap = self._recent_trap()
            if trap is not None:
                return self._down(
                    f"{state} (the switch sent {trap[0]} {trap[1]:.1f} s before)", watch, metrics, facts
                )
            return self._result(False, state, watch, metrics=metrics, facts=facts)
        if options.poe and poe_status is None:
            why = self._poe_unreadable or "no PoE row for the port"
            return self._result(
                True, f"{state}; PoE not readable on this switch ({why})", watch, metrics=metrics, facts=facts
            )
        if poe_status is not None and poe_status in POE_FAULTS:
            return self._result(
                True,
                f"{state}: PoE fault while the link is up",
                watch,
                degraded=True,
                metrics=metrics,
                facts=facts,
            )
        if poe_status is not None and poe_status != POE_DELIVERING:
            detail = f"{state}: link up but no PoE power (the device has another supply, or set poe_port)"
            return self._result(True, detail, watch, degraded=True, metrics=metrics, facts=facts)
        return self._result(True, state, watch, metrics=metrics, facts=facts)

    def _down(
        self, detail: str, watch: Stopwatch, metrics: dict[str, float], facts: dict[str, str]
    ) -> CheckResult:
        result = self._result(False, detail, watch, metrics=metrics, facts=facts)
        return CheckResult(**{**result.__dict__, "confirmed": True})

    def _recent_trap(self) -> tuple[str, float] | None:
        """The trap about this port that came within the receiver's ``hold`` (linkDown first), and its age."""
        if self.traps is None:
            return None
        for what in ("linkDown", "pethPsePortOnOffNotification"):
            when = self._traps.get(what)
            if when is not None and self._clock() - when <= self.traps.hold:
                return what, self._clock() - when
        return None

    def concerns(self, trap: Trap) -> bool:
        """Whether ``trap`` (from this probe's switch) may change what this check reads."""
        if trap.if_index is not None:
            return self._if_index is None or trap.if_index == self._if_index
        if trap.poe is not None:
            return self._poe is None or trap.poe == (self._poe.group, self._poe.port)
        return True  # coldStart, warmStart: everything may have changed

    async def watch(self, notify: Callable[[], None]) -> None:
        """With the agent's trap receiver: check at once when the switch reports this port changed."""
        if self.traps is None:
            return

        def received(trap: Trap) -> None:
            if self.concerns(trap):
                if trap.kind in ("linkDown", "pethPsePortOnOffNotification"):
                    self._traps[trap.kind] = self._clock()
                elif trap.kind == "linkUp":
                    self._traps.clear()
                notify()

        address = await self.session.address()
        await self.traps.serve(address or self.options.host, received)


def _integer(value: Any, name: str) -> int:
    if not isinstance(value, int):
        raise TypeError(f"{name} is {type(value).__name__}, not an integer")
    return value
